"""Retention: the store forgets a link, its log rows and its keyword issue record
SESAME_RETENTION after the link ended (expired or was revoked). Bytes served per day are
kept: they are a few bytes a day, and the 30-day chart needs them whole.

A sweep deletes in small batches, each its own transaction, so downloads wait at most one
batch; a process sweeps at most once per ``interval``.
"""

from __future__ import annotations

import logging
import threading

from sesame.errors import StoreUnavailable
from sesame.links import Clock
from sesame.store.base import Store

BATCH = 500  # rows per transaction
INTERVAL = 3600  # seconds between two sweeps of one process

log = logging.getLogger("sesame.retention")


class Periodic:
    """Work one process does at most once per ``interval``, one thread at a time, in a
    thread of its own if asked; ``sweep`` is the work, ``what`` names it in the log."""

    what = "periodic work"

    def __init__(self, clock: Clock, interval: int) -> None:
        self.clock = clock
        self.interval = interval
        self._last: float | None = None
        self._lock = threading.Lock()

    def sweep(self) -> int:
        raise NotImplementedError

    def due(self) -> bool:
        """Whether this process has not swept for ``interval`` seconds."""
        return self._last is None or self.clock() - self._last >= self.interval

    def sweep_if_due(self) -> int | None:
        """Sweep unless this process swept less than ``interval`` ago (then None); only one
        thread sweeps at a time."""
        with self._lock:
            if not self.due():
                return None
            self._last = self.clock()
        return self.sweep()

    def sweep_in_background(self) -> None:
        """If a sweep is due, run it in a thread of its own and return at once; a failure is
        logged, and the next interval tries again."""
        if self.due():
            threading.Thread(
                target=self.sweep_quietly, name=f"sesame-{self.what}", daemon=True
            ).start()

    def sweep_quietly(self) -> None:
        """sweep_if_due, with a failure logged rather than raised."""
        try:
            self.sweep_if_due()
        except StoreUnavailable as exc:  # the store's state, not a fault here: one line
            log.warning("%s: the sweep failed (%s); it is tried again later", self.what, exc.reason)
        except Exception:
            log.warning("%s: the sweep failed; it is tried again later", self.what, exc_info=True)


class Retention(Periodic):
    """When and what the store forgets, for one process."""

    what = "retention"

    def __init__(self, store: Store, keep: int, clock: Clock, interval: int = INTERVAL) -> None:
        super().__init__(clock, interval)
        self.store = store
        self.keep = keep

    def sweep(self) -> int:
        """Forget now every link that ended more than ``keep`` seconds ago, with its log
        rows; how many links were forgotten."""
        before = int(self.clock()) - self.keep
        dropped = self.store.drop_ended(before, BATCH)
        if dropped:
            log.info("retention: forgot %d links that ended before %d", dropped, before)
        return dropped
