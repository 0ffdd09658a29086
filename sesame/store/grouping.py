"""Group commit for the SQLite store: the download path's writes of many threads, in one
transaction.

A thread that has a download to begin or settle queues the work and takes the process's
write lock; whoever holds it runs every piece of work queued so far in one write
transaction, commits once, and hands each thread its answer. Should one piece fail, the
transaction is rolled back and run again with each piece in a savepoint of its own, so that
only the failing one is undone. A thread whose work a previous holder already did finds it
done and goes on. So a busy gateway pays one transaction (its locks and its WAL write) for
many downloads, while every download's check-then-write stays atomic with respect to every
thread and process, and no thread learns its outcome before it is committed. Only store
work runs under the lock: the gateway reads files, renders pages and checks tokens outside
it. Writes that need no answer (sesame.store.held) go into the next transaction, first.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sesame.store.held import Held

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
MAX_ROLLBACKS = 2  # times a batch is tried again without the work SQLite rolled it back for


@contextlib.contextmanager
def busy_for(db: sqlite3.Connection, seconds: float, then: float) -> Iterator[None]:
    """``db`` waiting at most ``seconds`` for another's lock in the block, ``then`` after."""
    if seconds == then:
        yield
        return
    db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(then * 1000)}")


@dataclass(eq=False, slots=True)
class _Ticket:
    work: Work
    done: bool = False
    value: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Work on one SQLite file, grouped under ``writing`` (the process's write lock), each
    call giving up after ``timeout`` seconds without the lock."""

    def __init__(
        self,
        writing: threading.Lock,
        timeout: float,
        write_held: Callable[[sqlite3.Connection, list[Any]], None] | None = None,
        flush: Callable[[], None] | None = None,
    ) -> None:
        self._writing = writing
        self._timeout = timeout
        # Items held back (``hold``), written by ``write_held`` as each transaction begins;
        # ``flush`` (this one's, unless the store wraps it) is what the flusher calls.
        self._held = None if write_held is None else Held(write_held, flush or self.flush)
        self._connection: Callable[[], sqlite3.Connection] | None = None
        self._failure: BaseException | None = None  # what the last transaction met
        # The store failed its last transaction (to begin or to commit): nothing is held back
        # until one commits, so that nothing is answered that it may be unable to write.
        self._failing = False
        self._queue: list[_Ticket] = []
        self._queued = threading.Lock()
        # Tickets are finished under it, and a thread whose work another holder took waits
        # on it: no thread waits (nor pays for an Event) when it does its own work.
        self._finished = threading.Condition(threading.Lock())

    def run(self, connection: Callable[[], sqlite3.Connection], work: Callable[..., T]) -> T:
        """``work(db)`` in a write transaction, with whatever else is queued meanwhile;
        ``connection()`` is this thread's connection, used if this thread does the work."""
        ((value, error),) = self.run_all(connection, [work])
        if error is not None:
            raise error
        result: T = value
        return result

    def run_all(
        self, connection: Callable[[], sqlite3.Connection], works: list[Work]
    ) -> list[tuple[Any, BaseException | None]]:
        """Each of ``works`` as ``run`` would (in one transaction when nothing else is
        queued), and what each gave: its value and None, or None and what it raised. Work
        that waited ``timeout`` seconds for the write lock without any holder taking it gives
        up with "database is locked", as a lone writer would."""
        tickets = [_Ticket(work) for work in works]
        with self._queued:
            self._queue.extend(tickets)
        deadline = time.monotonic() + self._timeout
        for ticket in tickets:
            while not ticket.done:
                if self._writing.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    try:
                        if not ticket.done:
                            try:
                                db = connection()
                            except BaseException as exc:  # no file to be had: none of it runs
                                self._give_up(tickets, exc)
                            else:
                                self._lead(db)
                    finally:
                        self._writing.release()
                    continue
                # no holder took them: give up
                self._give_up(tickets, sqlite3.OperationalError("database is locked"))
                with self._finished:  # a holder is doing it: its answer comes soon
                    while not ticket.done:
                        self._finished.wait()
        return [(ticket.value, ticket.error) for ticket in tickets]

    def _give_up(self, tickets: list[_Ticket], exc: BaseException) -> None:
        """Take those of ``tickets`` still queued out of the queue, failed with ``exc`` (the
        store's failure): no holder runs them after their caller heard it."""
        with self._queued:
            waiting = [t for t in tickets if t in self._queue]
            for late in waiting:
                self._queue.remove(late)
        self._fail(waiting, exc)

    @property
    def failing(self) -> bool:
        """Whether the store failed its last transaction and none has committed since."""
        return self._failing

    def hold(
        self, connection: Callable[[], sqlite3.Connection], items: list[Any], share: float = 1.0
    ) -> bool:
        """Hold ``items`` back for the next transaction (see sesame.store.held) while fewer
        than ``share`` of all that may be held are; False if they must be written now.
        ``connection()``: the calling thread's connection."""
        assert self._held is not None, "this group commit holds nothing back"
        if self._failing:
            return False
        self._connection = connection
        return self._held.hold(items, share)

    def flush(self, wait: float | None = None) -> None:
        """Write what is held back, in a transaction of its own (raises what it met; the
        items stay held). ``wait``: at most this long for the locks (None: the timeout),
        and not at all while the store is failing (then nothing is written)."""
        if self._held is None or not len(self._held) or self._connection is None:
            return
        if wait is not None and self._failing:
            return  # the flusher keeps trying
        # A read's short wait (proving nothing when it runs out) is for what is held only:
        # the downloads queued keep the store's whole timeout.
        whole = wait is None
        within = self._timeout if wait is None else wait
        failure = self._lead_within(self._connection, within, queued=whole, proves=whole)
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Write what is held back, and hold nothing more."""
        if self._held is not None:
            self._held.close()

    def _finish(self, answers: list[tuple[_Ticket, Any, BaseException | None]]) -> None:
        """Give each ticket its value or error, and wake whoever waits for one."""
        if not answers:
            return
        with self._finished:
            for ticket, value, error in answers:
                ticket.value, ticket.error, ticket.done = value, error, True
            self._finished.notify_all()

    def run_briefly(
        self, connection: Callable[[], sqlite3.Connection], work: Work, wait: float
    ) -> Any:
        """``work(db)`` as ``run`` would, after what is held back (as any transaction), but
        alone and waiting at most ``wait`` for the locks: for a write that had better fail
        than wait, while the store fails. Its commit, as any, says the store works again."""
        ticket = _Ticket(work)
        self._lead_within(connection, wait, queued=False, alone=[ticket])
        if ticket.error is not None:
            raise ticket.error
        return ticket.value

    def _lead_within(
        self,
        connection: Callable[[], sqlite3.Connection],
        wait: float,
        queued: bool,
        alone: list[_Ticket] | None = None,
        proves: bool = False,
    ) -> BaseException | None:
        """``_lead``, waiting at most ``wait`` for this process's write lock and then for
        another's: what it returns. Raises if either lock is not had in time (the store is
        then taken for failing if the wait ``proves`` it) or no connection is (it is)."""
        if not self._writing.acquire(timeout=wait):
            self._failing = self._failing or proves
            raise sqlite3.OperationalError("database is locked")  # by this process's writers
        try:
            try:
                db = connection()
            except BaseException:  # no file to be had: it cannot be written
                self._failing = True
                raise
            with busy_for(db, wait, self._timeout):
                return self._lead(db, queued=queued, alone=alone)
        finally:
            self._writing.release()

    def _lead(
        self, db: sqlite3.Connection, queued: bool = True, alone: list[_Ticket] | None = None
    ) -> BaseException | None:
        """Run everything queued (unless not ``queued``) and ``alone``, and write what is
        held back, holding the write lock. If what is held could not be written, it is held
        again, and this is what it met."""
        pending: list[_Ticket] = list(alone or [])
        if queued:
            with self._queued:
                pending, self._queue = pending + self._queue, []
        carrying = self._held is not None and self._held.carry()
        self._failure = None
        try:
            self._run(db, pending, carrying)
        except BaseException as exc:  # a savepoint or a rollback failed: nobody waits forever
            with contextlib.suppress(Exception):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            self._fail([t for t in pending if not t.done], exc)
        if self._held is not None and self._held.give_back():
            return self._failure or sqlite3.OperationalError("the transaction was not committed")
        return None

    def _run(self, db: sqlite3.Connection, pending: list[_Ticket], carrying: bool) -> None:
        for _ in range(MAX_ROLLBACKS + 1):
            if not pending and not carrying:
                return
            pending = self._batch(db, pending)
            if not pending:
                return
        self._fail(pending, sqlite3.OperationalError("the transaction was rolled back"))

    def _open(self, db: sqlite3.Connection) -> None:
        """Begin the write transaction, and write in it what is held back first."""
        db.execute("BEGIN IMMEDIATE")
        if self._held is not None:
            try:
                self._held.write(db)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _batch(self, db: sqlite3.Connection, pending: list[_Ticket]) -> list[_Ticket]:
        """One transaction of ``pending``; what must be tried again (SQLite rolled the whole
        transaction back for one piece of work, which alone fails)."""
        try:
            self._open(db)
        except BaseException as exc:
            return self._fail(pending, exc)
        if self._at_once(db, pending):
            return []
        try:
            self._open(db)
        except BaseException as exc:
            return self._fail(pending, exc)
        results: list[tuple[Any, BaseException | None]] = []
        for number, ticket in enumerate(pending):
            db.execute("SAVEPOINT work")
            try:
                results.append((ticket.work(db), None))
            except BaseException as exc:
                if not db.in_transaction:  # a full disk, an I/O error: all of it undone
                    self._failing = True
                    self._finish([(ticket, None, exc)])
                    return pending[:number] + pending[number + 1 :]
                db.execute("ROLLBACK TO work")
                results.append((None, exc))
            db.execute("RELEASE work")
        self._commit(db, pending, results)
        return []

    def _at_once(self, db: sqlite3.Connection, pending: list[_Ticket]) -> bool:
        """Run ``pending`` in the transaction just begun, with no savepoint each (two
        statements fewer a download), and commit: True. If one raises, roll it all back and
        say False, for ``_batch`` to run them again a savepoint each, where only the failing
        one is undone. Work fails only when the store does, or by a mistake: rarely."""
        try:
            values = [ticket.work(db) for ticket in pending]
        except BaseException:  # as the savepoints' path meets it: that work alone fails
            if db.in_transaction:
                db.execute("ROLLBACK")
            return False
        self._commit(db, pending, [(value, None) for value in values])
        return True

    def _commit(
        self,
        db: sqlite3.Connection,
        pending: list[_Ticket],
        results: list[tuple[Any, BaseException | None]],
    ) -> None:
        try:
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._fail(pending, exc)
            return
        self._failing = False
        if self._held is not None:
            self._held.committed()
        self._finish([(t, v, e) for t, (v, e) in zip(pending, results, strict=True)])

    def _fail(self, tickets: list[_Ticket], exc: BaseException) -> list[_Ticket]:
        """Fail ``tickets`` with ``exc``, the store's failure (not one piece of work's)."""
        self._failure, self._failing = exc, True
        self._finish([(ticket, None, copy.copy(exc)) for ticket in tickets])  # each its own
        return []
