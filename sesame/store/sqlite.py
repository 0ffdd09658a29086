"""The embedded default store: one SQLite file in WAL mode, shared by every local process."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple
from pathlib import Path
from typing import Any

from sesame.models import (
    ApiKey,
    DownloadEnd,
    DownloadEvent,
    DownloadStart,
    Link,
    Outcome,
    Refusal,
    Rule,
)
from sesame.store.backup import backup_sqlite
from sesame.store.migrations import migrate_sqlite
from sesame.store.sqlite_log import SQLiteLog

# What a new database gets: the latest schema (migrations.SQLITE_STEPS lead older ones here).
SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    max_downloads INTEGER,
    recipient TEXT,
    note TEXT,
    revoked_at INTEGER,
    downloads INTEGER NOT NULL DEFAULT 0,
    bytes_served INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    landing INTEGER NOT NULL DEFAULT 0,
    rate INTEGER
);
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY,
    link_id TEXT NOT NULL,
    at REAL NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    status INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    counted INTEGER NOT NULL DEFAULT 0
);
-- Rows are listed in the order they were written (their id), as in Redis. By link and
-- outcome for the Links page's counts, by time for the Activity page's periods.
CREATE INDEX IF NOT EXISTS downloads_by_link ON downloads (link_id, outcome);
CREATE INDEX IF NOT EXISTS downloads_by_time ON downloads (at);
CREATE TABLE IF NOT EXISTS rules (
    key TEXT PRIMARY KEY,
    keyword TEXT NOT NULL,
    file TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    max_downloads INTEGER,
    cooldown INTEGER NOT NULL,
    template TEXT,
    landing INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS issues (
    scope TEXT NOT NULL,
    recipient TEXT NOT NULL,
    link_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    PRIMARY KEY (scope, recipient)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
);
CREATE TABLE IF NOT EXISTS slots (
    id TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS egress (
    day INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);
"""

LINK_COLUMNS = (
    "id, file, created_at, expires_at, max_downloads, recipient, note, revoked_at, downloads,"
    " bytes_served, started_at, landing, rate"
)
EVENT_COLUMNS = "link_id, at, client_ip, user_agent, status, bytes_sent, outcome, counted"
RULE_COLUMNS = "keyword, file, lifetime, max_downloads, cooldown, template, landing, created_at"
KEY_COLUMNS = "id, name, prefix, digest, created_at, revoked_at, last_used_at"
ADD_EVENT = f"INSERT INTO downloads ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# A day's bytes grow, or shrink for bytes reserved but not sent, never below 0.
ADD_EGRESS = """INSERT INTO egress (day, bytes) VALUES (:day, MAX(0, :nbytes))
    ON CONFLICT (day) DO UPDATE SET bytes = MAX(0, bytes + :nbytes)"""


class SQLiteStore(SQLiteLog):
    """A Store on one SQLite file; one connection per thread, autocommit, WAL."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        migrate_sqlite(self._db, SCHEMA, str(self.path))

    @property
    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once so that check-then-write cannot race."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def add_link(self, link: Link) -> None:
        self._insert_link(self._db, link)

    def _insert_link(self, db: sqlite3.Connection, link: Link) -> None:
        db.execute(
            f"INSERT INTO links ({LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _link_row(link),
        )

    def get_link(self, link_id: str) -> Link | None:
        row = self._db.execute(
            f"SELECT {LINK_COLUMNS} FROM links WHERE id = ?", (link_id,)
        ).fetchone()
        return _link(row) if row else None

    def list_links(self) -> list[Link]:
        rows = self._db.execute(
            f"SELECT {LINK_COLUMNS} FROM links ORDER BY created_at DESC, id"
        ).fetchall()
        return [_link(row) for row in rows]

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        self._db.execute(
            "UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, link_id)
        )
        return self.get_link(link_id)

    def begin_download(self, start: DownloadStart) -> Refusal | None:
        with self._transaction() as db:
            refusal = self._refusal(db, start)
            if refusal is None:
                if start.nbytes:
                    db.execute(ADD_EGRESS, {"day": start.day, "nbytes": start.nbytes})
                if start.event is not None:
                    db.execute(ADD_EVENT, _event_row(start.event))
                else:
                    db.execute("DELETE FROM slots WHERE until < ?", (start.now,))
                    db.execute(
                        "INSERT OR REPLACE INTO slots (id, until) VALUES (?, ?)",
                        (start.slot_id, start.until),
                    )
            return refusal

    def _refusal(self, db: sqlite3.Connection, start: DownloadStart) -> Refusal | None:
        """Check the budget and the cap, then take the link's part: the first that fails."""
        if start.budget is not None:
            row = db.execute("SELECT bytes FROM egress WHERE day = ?", (start.day,)).fetchone()
            if (row[0] if row else 0) + start.nbytes > start.budget:
                return Refusal.BUDGET
        if start.cap is not None:
            (held,) = db.execute(
                "SELECT COUNT(*) FROM slots WHERE until >= ?", (start.now,)
            ).fetchone()
            if held >= start.cap:
                return Refusal.BUSY
        cursor = db.execute(
            """UPDATE links SET downloads = downloads + :counted,
                   bytes_served = bytes_served + :nbytes,
                   started_at = COALESCE(started_at, :now)
               WHERE id = :id AND revoked_at IS NULL
                 AND (:counted = 0 OR max_downloads IS NULL OR downloads < max_downloads)
                 AND (:cap IS NULL OR bytes_served + :nbytes <= :cap)""",
            {
                "id": start.link_id,
                "now": start.now,
                "nbytes": start.nbytes,
                "counted": int(start.counted),
                "cap": start.byte_cap,
            },
        )
        return None if cursor.rowcount == 1 else Refusal.LINK

    def end_download(self, end: DownloadEnd) -> None:
        with self._transaction() as db:
            if end.extra_bytes or end.uncount:
                db.execute(
                    """UPDATE links SET bytes_served = MAX(0, bytes_served + :extra),
                           downloads = MAX(0, downloads - :uncount)
                       WHERE id = :id""",
                    {"id": end.link_id, "extra": end.extra_bytes, "uncount": int(end.uncount)},
                )
            if end.event is not None:
                db.execute(ADD_EVENT, _event_row(end.event))
            if end.extra_bytes:
                db.execute(ADD_EGRESS, {"day": end.day, "nbytes": end.extra_bytes})
            db.execute("DELETE FROM slots WHERE id = ?", (end.slot_id,))

    def renew_slot(self, slot_id: str, until: int) -> None:
        self._db.execute("UPDATE slots SET until = ? WHERE id = ?", (until, slot_id))

    def count_slots(self, now: int) -> int:
        (held,) = self._db.execute("SELECT COUNT(*) FROM slots WHERE until >= ?", (now,)).fetchone()
        return int(held)

    def egress(self, first_day: int, last_day: int) -> dict[int, int]:
        rows = self._db.execute(
            "SELECT day, bytes FROM egress WHERE day BETWEEN ? AND ? AND bytes > 0",
            (first_day, last_day),
        )
        return {day: served for day, served in rows}

    def add_event(self, event: DownloadEvent) -> None:
        self._db.execute(ADD_EVENT, _event_row(event))

    def list_events(
        self, link_id: str | None = None, limit: int | None = None
    ) -> list[DownloadEvent]:
        query = f"SELECT {EVENT_COLUMNS} FROM downloads"
        params: list[Any] = []
        if link_id is not None:
            query += " WHERE link_id = ?"
            params.append(link_id)
        query += " ORDER BY id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._db.execute(query, params).fetchall()
        return [_event(row) for row in rows]

    def issue_link(self, scope: str, recipient: str, link: Link, cooldown: int) -> Link:
        with self._transaction() as db:
            row = db.execute(
                "SELECT link_id, issued_at FROM issues WHERE scope = ? AND recipient = ?",
                (scope, recipient),
            ).fetchone()
            if row and row[1] + cooldown > link.created_at:
                existing = self.get_link(row[0])
                if existing is not None:
                    return existing
            self._insert_link(db, link)
            db.execute(
                """INSERT INTO issues (scope, recipient, link_id, issued_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (scope, recipient)
                   DO UPDATE SET link_id = excluded.link_id, issued_at = excluded.issued_at""",
                (scope, recipient, link.id, link.created_at),
            )
        return link

    def add_rule(self, rule: Rule, replace: bool = False) -> bool:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        cursor = self._db.execute(
            f"{verb} INTO rules (key, {RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rule.key, *astuple(rule)),
        )
        return cursor.rowcount == 1

    def get_rule(self, key: str) -> Rule | None:
        row = self._db.execute(f"SELECT {RULE_COLUMNS} FROM rules WHERE key = ?", (key,)).fetchone()
        return _rule(row) if row else None

    def list_rules(self) -> list[Rule]:
        rows = self._db.execute(f"SELECT {RULE_COLUMNS} FROM rules ORDER BY key").fetchall()
        return [_rule(row) for row in rows]

    def remove_rule(self, key: str) -> Rule | None:
        with self._transaction() as db:
            rule = self.get_rule(key)
            db.execute("DELETE FROM rules WHERE key = ?", (key,))
        return rule

    def add_api_key(self, api_key: ApiKey) -> None:
        self._db.execute(
            f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(api_key)
        )

    def find_api_key(self, digest: str) -> ApiKey | None:
        row = self._db.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE digest = ?", (digest,)
        ).fetchone()
        return ApiKey(*row) if row else None

    def list_api_keys(self) -> list[ApiKey]:
        rows = self._db.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
        ).fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke_api_key(self, key_id: str, at: int) -> ApiKey | None:
        self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, key_id)
        )
        row = self._db.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
        ).fetchone()
        return ApiKey(*row) if row else None

    def touch_api_key(self, key_id: str, at: int) -> None:
        self._db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_id))

    def backup(self, target: Path) -> None:
        backup_sqlite(self._db, target)

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _link_row(link: Link) -> tuple[Any, ...]:
    return astuple(link)


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


def _link(row: tuple[Any, ...]) -> Link:
    # By position, in LINK_COLUMNS' order: the Links page makes 100,000 of these at once.
    link_id, file, created, expires, limit, recipient, note, revoked, count, served, began = row[
        :11
    ]
    landing, rate = row[11:]
    return Link(
        link_id,
        file,
        created,
        expires,
        limit,
        recipient,
        note,
        revoked,
        count,
        served,
        began,
        bool(landing),
        rate,
    )


def _rule(row: tuple[Any, ...]) -> Rule:
    keyword, file, lifetime, max_downloads, cooldown, template, landing, created_at = row
    return Rule(
        keyword, file, lifetime, max_downloads, cooldown, template, bool(landing), created_at
    )


def _event(row: tuple[Any, ...]) -> DownloadEvent:
    link_id, at, client_ip, user_agent, status, bytes_sent, outcome, counted = row
    return DownloadEvent(
        link_id, at, client_ip, user_agent, status, bytes_sent, Outcome(outcome), bool(counted)
    )
