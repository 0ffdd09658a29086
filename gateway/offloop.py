"""Work that may wait on the store or the disk, run off the event loop on threads of the
gateway's own.

A plain executor: anyio's ``to_thread`` (Starlette's ``run_in_threadpool``) spends tens of
microseconds per call on its limiter and its bookkeeping, a good part of a small download's
time (measured under wrk). When every thread is busy, a download waits for one; the event
loop never does. The SQLite store groups the downloads' writes of these threads in shared
transactions itself (sesame.store.grouping).

``Batches`` goes further for work that arrives many at once (the downloads of one turn of
the event loop): one trip to a thread for all of them, where they can share one trip to
the store, and one trip back.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
THREADS = 16  # downloads waiting on a slow store at once, per process
MAX_BATCH = 64  # requests in one batch: more wait for the next
_executor = ThreadPoolExecutor(THREADS, thread_name_prefix="sesame-store")


async def off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in one of the gateway's worker threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(func, *args, **kwargs))


class Batches(Generic[T, R]):
    """``await batches(item)``: ``decide(items)`` in one of the gateway's threads, for the
    items that came during the same turn of the event loop (up to MAX_BATCH), and this
    item's answer. ``decide`` gives one answer per item, in order: a value, or the error
    that item's caller raises. A batch still deciding does not hold the next: it goes to
    another thread."""

    def __init__(self, decide: Callable[[list[T]], list[R | BaseException]]) -> None:
        self._decide = decide
        # One open batch per event loop (a test may run several, each in its thread).
        self._open: dict[asyncio.AbstractEventLoop, list[tuple[T, asyncio.Future[R]]]] = {}

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        batch = self._open.get(loop)
        if batch is None:
            batch = self._open[loop] = []
            loop.call_soon(self._send, loop, batch)  # once this turn's requests are in
        future: asyncio.Future[R] = loop.create_future()
        batch.append((item, future))
        if len(batch) >= MAX_BATCH:
            self._send(loop, batch)
        return await future

    def _send(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[T, asyncio.Future[R]]]
    ) -> None:
        if self._open.get(loop) is batch:
            del self._open[loop]
            _executor.submit(self._run, loop, batch)

    def _run(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[T, asyncio.Future[R]]]
    ) -> None:
        try:
            answers = self._decide([item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to {len(batch)} requests")
        except BaseException as exc:  # a mistake in ``decide``: every caller hears it
            answers = [exc] * len(batch)
        loop.call_soon_threadsafe(_resolve, [future for _, future in batch], answers)


def _resolve(futures: list[asyncio.Future[R]], answers: list[R | BaseException]) -> None:
    for future, answer in zip(futures, answers, strict=True):
        if future.cancelled():
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
