"""Writes held back: what the SQLite store may answer before it is committed (the log rows and
counts of downloads through an unlimited link, over as they begin, and the rows of requests
that count nothing: a HEAD, a page, a refusal), written by the group commit's next
transaction: another thread's, which is sooner, or else the flusher's, within HOLD_WAIT.

A download through a link with a limit is never held back: its count is on disk before its
body starts. What is held is written in order before anything else of the transaction that
takes it (so a download settled later, or any other write of this process, finds it there),
and given back, in order, if that transaction is not committed; the flusher tries again,
waiting longer each time, up to RETRY_WAIT. Nothing more is held while the store fails (the
group commit says when), so that nothing is answered that may not be written; and at most
MAX_HELD at once, counting those a transaction is writing. Closing (the gateway's stop, the
interpreter's exit) writes what is held; a crash loses it: HOLD_WAIT's worth of downloads,
or, while the store has stopped answering, those answered before it was seen failing (up to
its timeout after it stopped); never more than MAX_HELD.
"""

from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
HOLD_WAIT = 0.05  # seconds what is held waits, at most, for a transaction to write it
RETRY_WAIT = 2.0  # seconds between the flusher's tries, at most, while the store fails
MAX_HELD = 4096  # items held at once; more are written as they come
# ... of which rows of requests that count nothing, cheap for anyone to send: a flood of
# them while the file is locked leaves the rest of MAX_HELD to the downloads.
NOTES_SHARE = 0.5
CLOSE_WAIT = 10.0  # seconds closing waits for the flusher's last write
IDLE = 5.0  # seconds between the flusher's looks at whether its store is still used

log = logging.getLogger("sesame.store")


class Held(Generic[T]):
    """Items held back for ``write(db, items)``, in a transaction begun by the group commit
    (``carry``, then ``write``, then ``committed`` or ``give_back``, all under its write
    lock); ``flush()`` (the group commit's) runs one when no other does soon enough."""

    def __init__(
        self, write: Callable[[sqlite3.Connection, list[T]], None], flush: Callable[[], None]
    ) -> None:
        self._write = write
        self._flush = flush
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._carried: list[T] = []  # taken into the transaction under way
        self._waiting = threading.Event()  # set while items wait for the flusher
        self._stop = threading.Event()
        self._closing = False
        self._flusher: threading.Thread | None = None

    def hold(self, items: list[T], share: float = 1.0) -> bool:
        """Hold ``items`` back; False, holding none of them, when ``share`` of MAX_HELD
        would be passed (counting those a transaction is writing), the store is closing, or
        no flusher can start: the caller writes them itself."""
        with self._lock:
            held = len(self._items) + len(self._carried)
            if self._closing or held + len(items) > MAX_HELD * share:
                return False
            if self._flusher is None:
                flusher = threading.Thread(
                    target=_flush_every,
                    args=(weakref.ref(self), self._waiting),
                    name="sesame-held",
                    daemon=True,
                )
                try:
                    flusher.start()
                except RuntimeError:  # no thread to be had: nothing is held
                    return False
                self._flusher = flusher
                atexit.register(_close_at_exit, weakref.ref(self))
            self._items.extend(items)
        self._waiting.set()
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items) + len(self._carried)

    def carry(self) -> bool:
        """Take every item held into the transaction about to begin; whether there are any."""
        with self._lock:
            self._carried, self._items = self._carried + self._items, []
            return bool(self._carried)

    def write(self, db: sqlite3.Connection) -> None:
        """Write the items carried, in the transaction just begun."""
        if self._carried:
            self._write(db, self._carried)

    def committed(self) -> None:
        """The transaction that wrote the items carried is committed."""
        self._carried = []

    def give_back(self) -> bool:
        """The items carried were not committed: held again, before any held since; whether
        there were any."""
        with self._lock:
            if not self._carried:
                return False
            self._items[:0] = self._carried
            self._carried = []
        self._waiting.set()
        return True

    def close(self) -> None:
        """Hold nothing more, and write what is held (raises what that met)."""
        with self._lock:
            self._closing = True
            flusher = self._flusher
        self._stop.set()
        self._waiting.set()
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(CLOSE_WAIT)
        if len(self):
            self._flush()

    def _flush_step(self, wait: float) -> float | None:
        """One round of the flusher, once something is held: gather, write, and say how
        long to gather next time (None: closing, which writes the rest itself)."""
        # Gather what comes meanwhile, unless a transaction takes it sooner.
        if self._stop.wait(wait):
            return None
        self._waiting.clear()
        try:
            self._flush()
        except Exception as exc:
            if wait == HOLD_WAIT:  # once per spell of failures
                log.warning("%d download rows wait for the store: %s", len(self), exc)
            self._waiting.set()
            return min(wait * 2, RETRY_WAIT)
        if wait != HOLD_WAIT:
            log.warning("the download rows that waited for the store are written")
        return HOLD_WAIT


def _flush_every(ref: weakref.ref[Held[T]], waiting: threading.Event) -> None:
    """The flusher: holds its ``Held`` only while it writes, so that a store nobody uses
    any more can go (and this thread with it, within IDLE)."""
    wait: float | None = HOLD_WAIT
    while wait is not None:
        if not waiting.wait(IDLE):
            if ref() is None:
                return
            continue
        held = ref()
        if held is None:
            return
        wait = held._flush_step(wait)
        del held


def _close_at_exit(held: weakref.ref[Held[T]]) -> None:
    """What is held, written as the interpreter exits (a daemon flusher is stopped then)."""
    alive = held()
    if alive is None or not len(alive):
        return
    try:
        alive.close()
    except Exception as exc:
        log.error("%d download rows could not be written at exit: %s", len(alive), exc)
