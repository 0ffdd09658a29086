"""The SQLite store's download path: beginning a download, settling it, its lease and its
session; kept apart from ``sqlite.py``, which holds the records."""

from __future__ import annotations

import copy
import functools
import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, replace
from typing import Any, TypeVar

from sesame.models import DownloadEnd, DownloadEvent, DownloadStart, Outcome, Refusal
from sesame.store.base import Each

EVENT_COLUMNS = "link_id, at, client_ip, user_agent, status, bytes_sent, outcome, counted"
ADD_EVENT = f"INSERT INTO downloads ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
T = TypeVar("T")
# What the store holds back (sesame.store.held): downloads let in, and rows noted.
HeldItem = DownloadStart | DownloadEvent
SWEEP_BATCH = 20  # lapsed leases settled per download begun (by the first of a batch)
SESSION_WINDOW = 60  # seconds after a session's download arrived that its pieces still join it
LEASE_COLUMNS = "id, link_id, counted, reserved, day, sent, row"
# A download's row logged when it began, replaced by the row of how it really went.
AMEND_EVENT = """UPDATE downloads SET at = ?, status = ?, bytes_sent = ?, outcome = ?, counted = ?
    WHERE id = (SELECT MAX(id) FROM downloads WHERE link_id = ? AND at = ? AND outcome = ?)"""
# A link's bytes served grow or shrink (never below 0), and a download may be given back.
SETTLE_LINK = """UPDATE links SET bytes_served = MAX(0, bytes_served + :extra),
    downloads = MAX(0, downloads - :uncount) WHERE id = :id"""
# A link's downloads taken, as _take decided them.
TAKE = """UPDATE links SET downloads = :downloads, bytes_served = :served,
    started_at = COALESCE(started_at, :now) WHERE id = :id"""
# A link's downloads let in without asking it (held back: see begin_downloads), added.
ADD_HELD = """UPDATE links SET downloads = downloads + :downloads,
    bytes_served = bytes_served + :served, started_at = COALESCE(started_at, :now) WHERE id = :id"""
# A day's bytes grow, or shrink for bytes reserved but not sent, never below 0.
ADD_EGRESS = """INSERT INTO egress (day, bytes) VALUES (:day, MAX(0, :nbytes))
    ON CONFLICT (day) DO UPDATE SET bytes = MAX(0, bytes + :nbytes)"""


class SQLiteDownloads:
    """The download path of SQLiteStore; needs its ``_db`` and ``_transaction``."""

    @property
    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError

    def _grouped_all(self, works: list[Callable[[sqlite3.Connection], T]]) -> Each[T]:
        raise NotImplementedError

    def _hold(self, items: list[HeldItem], share: float = 1.0) -> bool:
        raise NotImplementedError

    def begin_download(self, start: DownloadStart) -> Refusal | None:
        return self._grouped(lambda db: self._begin(db, start))

    def begin_downloads(self, starts: list[DownloadStart]) -> Each[Refusal | None]:
        """As the Store says; a download that nothing can refuse (``_held_back``) is let in
        at once, and written by the next transaction (sesame.store.held)."""
        held = [number for number, start in enumerate(starts) if _held_back(start)]
        if not held or not self._hold([starts[number] for number in held]):
            return self._begin_now(starts)
        answers: Each[Refusal | None] = Each([None] * len(starts))
        if len(held) < len(starts):
            kept = set(held)
            rest = [number for number in range(len(starts)) if number not in kept]
            for number, answer in zip(
                rest, self._begin_now([starts[n] for n in rest]), strict=True
            ):
                answers[number] = answer
        return answers

    def _begin_now(self, starts: list[DownloadStart]) -> Each[Refusal | None]:
        if len(starts) > 1 and all(_plainly_settled(start) for start in starts):
            try:
                return Each(self._grouped(functools.partial(self._begin_settled, starts=starts)))
            except Exception as exc:  # the store failed them all: each hears it
                return Each(copy.copy(exc) for _ in starts)
        sweep = SWEEP_BATCH * len(starts)  # the first sweeps for all
        return self._grouped_all(
            [
                functools.partial(self._begin, start=start, sweep=0 if number else sweep)
                for number, start in enumerate(starts)
            ]
        )

    def _begin(
        self, db: sqlite3.Connection, start: DownloadStart, sweep: int = SWEEP_BATCH
    ) -> Refusal | None:
        if sweep:
            self._sweep(db, start.now, sweep)
        joined = (
            start.counted and start.piece and self._counted_in_flight(db, start.session, start.now)
        )
        if joined:
            start = replace(start, counted=False)
        refusal = self._refusal(db, start)
        if refusal is None:
            if start.nbytes:
                db.execute(ADD_EGRESS, {"day": start.day, "nbytes": start.nbytes})
            if start.settled:
                assert start.event is not None
                db.execute(ADD_EVENT, _event_row(start.event))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, 0)",
                    (
                        start.slot_id,
                        start.until,
                        start.link_id,
                        int(start.counted),
                        start.nbytes,
                        start.day,
                        _json_row(start.event),
                        start.session,
                    ),
                )
        return refusal

    def _begin_settled(
        self, db: sqlite3.Connection, starts: list[DownloadStart]
    ) -> list[Refusal | None]:
        """``_begin`` of each of ``starts`` in turn, for downloads settled as they begin with
        no budget or cap to heed (see ``_plainly_settled``), in fewer statements: each
        link's downloads taken together (``_take``), every row logged by one INSERT, each
        day's bytes added once."""
        # Lapsed leases as of the batch's latest second (one by one, each start sweeps at
        # its own; a batch is decided at once, as of then).
        self._sweep(db, max(start.now for start in starts), SWEEP_BATCH * len(starts))
        refusals: list[Refusal | None] = [None] * len(starts)
        by_link: dict[str, list[int]] = {}  # positions of each link's downloads
        for number, start in enumerate(starts):
            by_link.setdefault(start.link_id, []).append(number)
        for link_id, numbers in by_link.items():
            taken = self._take(db, link_id, [starts[number] for number in numbers])
            for number, took in zip(numbers, taken, strict=True):
                refusals[number] = None if took else Refusal.LINK
        days: dict[int, int] = {}
        rows = []
        for start, refusal in zip(starts, refusals, strict=True):
            if refusal is None:
                assert start.event is not None
                days[start.day] = days.get(start.day, 0) + start.nbytes
                rows.append(_event_row(start.event))
        for day, nbytes in days.items():
            if nbytes:
                db.execute(ADD_EGRESS, {"day": day, "nbytes": nbytes})
        db.executemany(ADD_EVENT, rows)
        return refusals

    def _write_held(self, db: sqlite3.Connection, items: list[HeldItem]) -> None:
        """Write what is held back: the downloads (``_held_back``), each let in as it began,
        and the rows noted (``note_event``). Each link's downloads and bytes added (none is
        refused now: a link revoked meanwhile was open when they were let in), each day's
        bytes, every row in the order held; and the lapsed leases swept, as
        ``_begin_settled`` would."""
        starts = [item for item in items if isinstance(item, DownloadStart)]
        rows = [item if isinstance(item, DownloadEvent) else item.event for item in items]
        if starts:
            self._sweep(db, max(start.now for start in starts), SWEEP_BATCH * len(starts))
        links: dict[str, dict[str, Any]] = {}
        days: dict[int, int] = {}
        for start in starts:
            took = links.setdefault(
                start.link_id, {"id": start.link_id, "downloads": 0, "served": 0, "now": start.now}
            )
            took["downloads"] += start.counted
            took["served"] += start.nbytes
            days[start.day] = days.get(start.day, 0) + start.nbytes
        db.executemany(ADD_HELD, list(links.values()))
        db.executemany(ADD_EGRESS, [{"day": d, "nbytes": n} for d, n in days.items() if n])
        db.executemany(ADD_EVENT, [_event_row(row) for row in rows if row])

    def _take(
        self, db: sqlite3.Connection, link_id: str, starts: list[DownloadStart]
    ) -> list[bool]:
        """Which of ``starts``, downloads of ``link_id`` in this order, the link lets in:
        it is known and not revoked, a counted one fits under its download limit and each
        under its byte cap. One read of the record and one update for all of them, within
        the write transaction (the record cannot change in between)."""
        record = db.execute(
            "SELECT downloads, max_downloads, bytes_served FROM links"
            " WHERE id = ? AND revoked_at IS NULL",
            (link_id,),
        ).fetchone()
        if record is None:
            return [False] * len(starts)
        downloads, limit, served = record
        taken, first = [], None
        for start in starts:
            took = not (start.counted and limit is not None and downloads >= limit) and not (
                start.byte_cap is not None and served + start.nbytes > start.byte_cap
            )
            if took:
                downloads, served = downloads + start.counted, served + start.nbytes
                first = start.now if first is None else first
            taken.append(took)
        if first is not None:
            db.execute(
                TAKE, {"id": link_id, "downloads": downloads, "served": served, "now": first}
            )
        return taken

    def _counted_in_flight(self, db: sqlite3.Connection, session: str, now: int) -> bool:
        """Whether ``session`` has a counted download in flight, or one that arrived less
        than SESSION_WINDOW seconds ago."""
        if not session:
            return False
        row = db.execute(
            """SELECT 1 FROM leases WHERE session = ? AND counted = 1 AND until >= ?
               UNION ALL SELECT 1 FROM sessions WHERE session = ? AND until >= ? LIMIT 1""",
            (session, now, session, now),
        ).fetchone()
        return row is not None

    def _sweep(self, db: sqlite3.Connection, now: int, most: int) -> None:
        """Settle, as aborted with the bytes last reported, up to ``most`` leases lapsed
        before ``now``: downloads whose gateway died."""
        lapsed = db.execute(
            f"SELECT {LEASE_COLUMNS} FROM leases WHERE until < ? ORDER BY until LIMIT ?",
            (now, most),
        ).fetchall()
        for lease in lapsed:
            self._settle_lease(db, lease, None, False)

    def settle_lease(self, slot_id: str, sent: int, completed: bool) -> bool:
        with self._transaction() as db:
            lease = db.execute(
                f"SELECT {LEASE_COLUMNS} FROM leases WHERE id = ?", (slot_id,)
            ).fetchone()
            if lease is not None:
                self._settle_lease(db, lease, sent, completed)
            return lease is not None

    def _settle_lease(
        self, db: sqlite3.Connection, lease: tuple[Any, ...], sent: int | None, completed: bool
    ) -> None:
        """Settle a lease's download from its own record: ``sent`` bytes (None: those last
        reported), completed or aborted."""
        slot_id, link_id, _, reserved, day, reported, row = lease
        sent = min(reported if sent is None else sent, reserved)
        completed = completed and sent >= reserved
        event = replace(
            _from_json_row(row),
            bytes_sent=sent,
            outcome=Outcome.COMPLETED if completed else Outcome.ABORTED,
        )
        end = DownloadEnd(link_id, sent - reserved, False, day, slot_id, event, None, completed)
        self._settle(db, end)

    def _refusal(self, db: sqlite3.Connection, start: DownloadStart) -> Refusal | None:
        """Check the budget and the cap, then take the link's part: the first that fails."""
        if start.budget is not None:
            row = db.execute("SELECT bytes FROM egress WHERE day = ?", (start.day,)).fetchone()
            if (row[0] if row else 0) + start.nbytes > start.budget:
                return Refusal.BUDGET
        if start.cap is not None:
            (held,) = db.execute(
                "SELECT COUNT(*) FROM leases WHERE until >= ?", (start.now,)
            ).fetchone()
            if held >= start.cap:
                return Refusal.BUSY
        return None if self._take(db, start.link_id, [start]) == [True] else Refusal.LINK

    def end_download(self, end: DownloadEnd) -> None:
        self._grouped(lambda db: self._settle(db, end))

    def _settle(self, db: sqlite3.Connection, end: DownloadEnd) -> None:
        lease = db.execute(
            "SELECT counted, session, delivered FROM leases WHERE id = ?", (end.slot_id,)
        ).fetchone()
        if lease is not None:
            counted = bool(lease[0])
            fate = self._session_ends(db, end, counted, lease[1], bool(lease[2]))
            event = end.event and replace(end.event, counted=fate == "kept")
            end = replace(end, uncount=fate == "given back", event=event)
        if end.extra_bytes or end.uncount:
            db.execute(
                SETTLE_LINK,
                {"id": end.link_id, "extra": end.extra_bytes, "uncount": int(end.uncount)},
            )
        if end.event is not None and end.amends is not None:
            e, old = end.event, end.amends
            db.execute(
                AMEND_EVENT,
                (
                    e.at,
                    e.status,
                    e.bytes_sent,
                    e.outcome,
                    e.counted,
                    old.link_id,
                    old.at,
                    old.outcome,
                ),
            )
        elif end.event is not None:
            db.execute(ADD_EVENT, _event_row(end.event))
        if end.extra_bytes:
            db.execute(ADD_EGRESS, {"day": end.day, "nbytes": end.extra_bytes})
        db.execute("DELETE FROM leases WHERE id = ?", (end.slot_id,))

    def _session_ends(
        self, db: sqlite3.Connection, end: DownloadEnd, counted: bool, session: str, done: bool
    ) -> str:
        """What becomes of a leased download's count as it ends: "" if it held none; "kept"
        if it completed, or a piece of its session that held the last byte did (``done``);
        "passed" to a piece of its session still in flight; "given back" otherwise."""
        if end.completed and end.final and not counted and session:
            db.execute(
                "UPDATE leases SET delivered = 1 WHERE session = ? AND counted = 1", (session,)
            )
        if not counted:
            return ""
        if end.completed or done:
            if session and end.event is not None:
                now = int(end.event.at)
                db.execute("DELETE FROM sessions WHERE until < ?", (now,))  # tidy as it grows
                db.execute(
                    "INSERT OR REPLACE INTO sessions VALUES (?, ?)", (session, now + SESSION_WINDOW)
                )
            return "kept"
        heir = db.execute(
            "SELECT id FROM leases WHERE session = ? AND id != ? AND ? != '' LIMIT 1",
            (session, end.slot_id, session),
        ).fetchone()
        if heir is None:
            return "given back"
        db.execute("UPDATE leases SET counted = 1 WHERE id = ?", heir)
        return "passed"

    def renew_slot(self, slot_id: str, until: int, sent: int = 0) -> None:
        self._db.execute(
            "UPDATE leases SET until = ?, sent = MAX(sent, ?) WHERE id = ?", (until, sent, slot_id)
        )

    def count_slots(self, now: int) -> int:
        (held,) = self._db.execute(
            "SELECT COUNT(*) FROM leases WHERE until >= ?", (now,)
        ).fetchone()
        return int(held)


def _plainly_settled(start: DownloadStart) -> bool:
    """A download settled as it begins that is no piece of a session, with no daily budget
    nor concurrency cap to check: what ``_begin_settled`` may begin with others."""
    return (
        start.settled
        and not start.piece
        and not start.session
        and start.budget is None
        and start.cap is None
    )


def _held_back(start: DownloadStart) -> bool:
    """A download nothing can refuse once its link was found open, settled as it begins:
    through a link with no limit (no download limit, so no byte cap), plainly settled. Its
    writes need not be committed before its answer (see sesame.store.held)."""
    return start.byte_cap is None and _plainly_settled(start)


def _event_row(event: DownloadEvent) -> tuple[Any, ...]:
    # Not astuple(): it deep-copies every field, and this runs once per download.
    return (
        event.link_id,
        event.at,
        event.client_ip,
        event.user_agent,
        event.status,
        event.bytes_sent,
        event.outcome,
        event.counted,
    )


def _json_row(event: DownloadEvent | None) -> str:
    assert event is not None
    return json.dumps(asdict(event))


def _from_json_row(data: str) -> DownloadEvent:
    values = json.loads(data)
    return DownloadEvent(**{**values, "outcome": Outcome(values["outcome"])})
