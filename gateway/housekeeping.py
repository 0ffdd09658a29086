"""What the gateway does beside answering requests: retention sweeps, in a thread of their
own so that a sweep never holds up the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from sesame.retention import Retention

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def lifespan(inner: Lifespan | None = None) -> Lifespan:
    """A lifespan that sweeps ``app.state.service.retention`` at startup and then once per
    its interval until shutdown, around ``inner`` (another lifespan) if given."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        retention: Retention = app.state.service.retention
        sweeper = threading.Thread(
            target=_sweep_until, args=(retention, stop), name="sesame-retention", daemon=True
        )
        sweeper.start()
        try:
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield
        finally:
            stop.set()
            # The sweep in course ends before the store can be closed under it.
            await asyncio.to_thread(sweeper.join, 30)

    return run


def _sweep_until(retention: Retention, stop: threading.Event) -> None:
    retention.sweep_quietly()
    while not stop.wait(retention.interval):
        retention.sweep_quietly()
