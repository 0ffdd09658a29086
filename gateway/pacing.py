"""What a download does between chunks to protect the owner's bandwidth: keep under its
link's speed cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sesame.models import Link

CHUNK = 256 * 1024
MIN_CHUNK = 4 * 1024
SLICES_PER_SECOND = 4  # a capped download sends a quarter second's worth at a time

Sleep = Callable[[float], Awaitable[None]]


def delay(sent: int, elapsed: float, rate: int) -> float:
    """How long to wait after ``sent`` bytes in ``elapsed`` seconds so that the average
    stays at most ``rate`` bytes a second: 0 for a client slower than that."""
    return max(0.0, sent / rate - elapsed)


class Pacer:
    """Called after each chunk a download sends (``more``: whether others follow): for a
    capped link, sleeps as long as ``delay`` says before the next. Sleeping, not spinning:
    the event loop serves others meanwhile."""

    def __init__(
        self,
        rate: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        # Only a capped download needs small slices; any other sends as its response likes.
        self.chunk_size = (
            None if rate is None else max(MIN_CHUNK, min(CHUNK, rate // SLICES_PER_SECOND))
        )
        self.started = clock()
        self.sent = 0

    async def __call__(self, nbytes: int, more: bool = True) -> None:
        if self.rate is None or not more:  # after the last chunk there is nothing to slow
            return
        self.sent += nbytes
        wait = delay(self.sent, self.clock() - self.started, self.rate)
        if wait > 0:
            await self.sleep(wait)


def pacer(link: Link) -> Pacer | None:
    """The hook a download of ``link`` calls after each chunk it sends, or None if it needs
    none (no speed cap)."""
    return None if link.rate is None else Pacer(link.rate)
