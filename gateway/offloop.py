"""Work that may wait on the store or the disk, run off the event loop on threads of the
gateway's own.

A plain executor: anyio's ``to_thread`` (Starlette's ``run_in_threadpool``) spends tens of
microseconds per call on its limiter and its bookkeeping, a good part of a small download's
time (measured under wrk). When every thread is busy, a download waits for one; the event
loop never does. The SQLite store groups the downloads' writes of these threads in shared
transactions itself (sesame.store.grouping).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
THREADS = 16  # downloads waiting on a slow store at once, per process
_executor = ThreadPoolExecutor(THREADS, thread_name_prefix="sesame-store")


async def off_loop(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in one of the gateway's worker threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, functools.partial(func, *args, **kwargs))
