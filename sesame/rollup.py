"""The sums of the log that the Activity page reads over long periods (see
``Store.roll_up``), brought up to date by each process that shows or serves the log: the
dashboard before it answers, the gateway in its housekeeping. A catch-up adds ``BATCH``
rows per transaction, so a download waits for one batch at most; the answers are the same
whether the sums are behind or not, only slower when they are far behind."""

from __future__ import annotations

import logging

from sesame.links import Clock
from sesame.retention import Periodic
from sesame.store.base import Store

BATCH = 2000  # log rows per transaction: a few milliseconds
INTERVAL = 60  # seconds between two catch-ups of one process

log = logging.getLogger("sesame.rollup")


class Rollup(Periodic):
    """When one process brings the store's sums up to date."""

    what = "rollup"

    def __init__(self, store: Store, clock: Clock, interval: int = INTERVAL) -> None:
        super().__init__(clock, interval)
        self.store = store

    def sweep(self) -> int:
        """Add every log row the sums lack; how many were added."""
        added = 0
        while rolled := self.store.roll_up(BATCH):
            added += rolled
        if added > 1000 * BATCH:
            log.info("rollup: added %d log rows to the sums", added)
        return added
