"""What the gateway does beside answering requests: retention sweeps and the log's sums
brought up to date, each in a thread of its own so that neither holds up the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from sesame.retention import Periodic

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def lifespan(inner: Lifespan | None = None) -> Lifespan:
    """A lifespan that sweeps ``app.state.service.retention`` and ``.rollup`` at startup
    and then each once per its interval until shutdown, around ``inner`` (another lifespan)
    if given."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        service = app.state.service
        sweepers = [
            threading.Thread(
                target=_sweep_until, args=(work, stop), name=f"sesame-{work.what}", daemon=True
            )
            for work in (service.retention, service.rollup)
        ]
        for sweeper in sweepers:
            sweeper.start()
        try:
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield
        finally:
            stop.set()
            # The sweeps in course end before the store can be closed under them.
            for sweeper in sweepers:
                await asyncio.to_thread(sweeper.join, 30)

    return run


def _sweep_until(work: Periodic, stop: threading.Event) -> None:
    work.sweep_quietly()
    while not stop.wait(work.interval):
        work.sweep_quietly()
