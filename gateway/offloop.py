"""Work that may wait on the store or the disk, run off the event loop on threads of the
gateway's own.

``off_loop``: a plain executor. anyio's ``to_thread`` (Starlette's ``run_in_threadpool``)
spends tens of microseconds per call on its limiter and its bookkeeping, a good part of a
small download's time (measured under wrk). When every thread is busy, a download waits for
one; the event loop never does.

``Batches``: the downloads' own work, grouped. One thread runs every job waiting at once
inside one store batch (SQLite: one write transaction, a group commit), and hands their
answers back only once the batch is committed, so a count is durable before its body
starts. A busy gateway pays one thread hop and one commit for many downloads; an idle one
pays what ``off_loop`` does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sesame.errors import StoreUnavailable
from sesame.store import Store

P = ParamSpec("P")
T = TypeVar("T")
THREADS = 16  # downloads waiting on a slow store at once, per process
MAX_BATCH = 64  # jobs in one batch
_executor = ThreadPoolExecutor(THREADS, thread_name_prefix="sesame-store")
log = logging.getLogger("sesame.gateway")


async def off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in one of the gateway's worker threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(func, *args, **kwargs))


@dataclass(slots=True)
class _Job:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    ok: bool = False
    value: Any = None


class Batches:
    """Jobs run in batches of ``store`` on a thread of their own. ``undo(value)`` releases
    what a job's answer holds (an open file) when the answer is not handed back: its batch
    failed to commit, or its request was given up meanwhile."""

    def __init__(self, store: Store, undo: Callable[[Any], None] | None = None) -> None:
        self._store = store
        self._undo = undo or (lambda value: None)
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.grouping = True  # False once the store says it cannot batch: jobs go one by one

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in the next batch; its answer once the batch is committed."""
        if not self.grouping:
            return await off_loop(func, *args)
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._start_thread()
        job = _Job(func, args, loop.create_future(), loop)
        self._jobs.put(job)
        result: T = await job.future
        return result

    def _start_thread(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="sesame-batches", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            while len(jobs) < MAX_BATCH:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._batch(jobs)
            except BaseException as exc:  # never leave a request waiting
                log.exception("a batch of downloads failed")
                self._fail(jobs, exc)

    def _batch(self, jobs: list[_Job]) -> None:
        try:
            grouped = self._store.open_batch()
        except BaseException as exc:  # the store is down: every job hears it
            return self._fail(jobs, exc)
        if not grouped:
            self.grouping = False
            for job in jobs:
                self._call(job)
            return self._hand_back(jobs)
        for number, job in enumerate(jobs):
            self._call(job)
            if not self._store.batch_open():  # a failure undid the batch and all it did
                self._fail(jobs[: number + 1], job.value if not job.ok else _undone())
                self._store.close_batch(commit=False)
                return self._batch(jobs[number + 1 :]) if number + 1 < len(jobs) else None
        try:
            self._store.close_batch()
        except BaseException as exc:
            return self._fail(jobs, exc)
        self._hand_back(jobs)

    @staticmethod
    def _call(job: _Job) -> None:
        try:
            job.value, job.ok = job.func(*job.args), True
        except BaseException as exc:
            job.value, job.ok = exc, False

    def _fail(self, jobs: list[_Job], exc: BaseException) -> None:
        for job in jobs:
            if job.ok:
                self._undo(job.value)
            job.value, job.ok = exc, False
        self._hand_back(jobs)

    def _hand_back(self, jobs: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, some in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._resolve, some)
            except RuntimeError:  # the loop is closed: nobody waits for these any more
                for job in some:
                    if job.ok:
                        self._undo(job.value)

    def _resolve(self, jobs: list[_Job]) -> None:
        for job in jobs:
            if job.future.cancelled():
                if job.ok:
                    self._undo(job.value)
            elif job.ok:
                job.future.set_result(job.value)
            else:
                job.future.set_exception(job.value)


def _undone() -> StoreUnavailable:
    return StoreUnavailable("batch", "the store undid the batch this download was in")
