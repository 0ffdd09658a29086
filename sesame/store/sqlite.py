"""The embedded default store: one SQLite file in WAL mode, shared by every local process."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import astuple
from pathlib import Path
from typing import Any, TypeVar

from sesame.models import (
    ApiKey,
    DownloadEvent,
    Link,
    Outcome,
    Rule,
)
from sesame.store.backup import backup_sqlite
from sesame.store.base import Each
from sesame.store.casefold import holds
from sesame.store.grouping import GroupCommit, busy_for
from sesame.store.held import NOTES_SHARE
from sesame.store.migrations import migrate_sqlite
from sesame.store.sqlite_downloads import (
    ADD_EVENT,
    EVENT_COLUMNS,
    HeldItem,
    SQLiteDownloads,
    _event_row,
)
from sesame.store.sqlite_log import SQLiteLog
from sesame.store.sqlite_rollup import SCHEMA as ROLLUP_SCHEMA

# What a new database gets: the latest schema (migrations.SQLITE_STEPS lead older ones here).
SCHEMA = (
    """
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
-- Downloads in flight. A lease keeps what settling its download needs, so that one whose
-- gateway died is settled by another when it lapses (the row is logged as aborted).
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    until INTEGER NOT NULL,
    link_id TEXT NOT NULL,
    counted INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    day INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    row TEXT NOT NULL,
    session TEXT NOT NULL DEFAULT '',
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS leases_by_until ON leases (until);
CREATE INDEX IF NOT EXISTS leases_by_session ON leases (session);
-- Sessions whose counted download arrived lately: a piece of theirs begun soon after joins it.
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS egress (
    day INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);
"""
    + ROLLUP_SCHEMA
)

LINK_COLUMNS = (
    "id, file, created_at, expires_at, max_downloads, recipient, note, revoked_at, downloads,"
    " bytes_served, started_at, landing, rate"
)
RULE_COLUMNS = "keyword, file, lifetime, max_downloads, cooldown, template, landing, created_at"
KEY_COLUMNS = "id, name, prefix, digest, created_at, revoked_at, last_used_at"
ONCE_SCHEMA = "CREATE TABLE IF NOT EXISTS once (key TEXT PRIMARY KEY, until INTEGER NOT NULL)"
T = TypeVar("T")
log = logging.getLogger("sesame.store")
PING_WAIT = 0.02  # seconds ping() waits for another's write lock
WAL_RETRY = 0.01  # seconds between tries to put a file another is writing in WAL mode
NOTE_WAIT = 0.02  # seconds a row noted while the store fails waits for another's lock
TOUCH_WAIT = 0.02  # seconds a key's use waits for another's lock before going unnoted
MIN_ROOM = 64 * 1024  # bytes free on the database's file system below which ping() fails


class SQLiteStore(SQLiteDownloads, SQLiteLog):
    """A Store on one SQLite file; one connection per thread, autocommit, WAL."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout = timeout  # how long a write waits for another's lock
        _private_file(self.path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # This process's write transactions take turns here: SQLite makes writers that find
        # the file locked sleep and poll (1 ms, 2 ms, 5 ms...), which cost about half of a
        # small download's time once downloads ran on worker threads (measured under wrk).
        self._writing = threading.Lock()
        # The flusher calls the store's own flush: guarded, a failure gets it a new connection.
        self._group = GroupCommit(self._writing, timeout, self._write_held, self.flush)
        migrate_sqlite(self._db, SCHEMA, str(self.path))

    @property
    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            _to_wal(conn, self.timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.create_function("holds", 2, holds, deterministic=True)
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, wait: float | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once so that check-then-write cannot race;
        ``wait``: how long to wait for this process's other writers (the timeout)."""
        db = self._db
        if not self._writing.acquire(timeout=self.timeout if wait is None else wait):
            raise sqlite3.OperationalError("database is locked")  # by this process's writers
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            self._writing.release()

    def _grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in a write transaction shared with other threads' (see grouping)."""
        return self._group.run(lambda: self._db, work)

    def _grouped_all(self, works: list[Callable[[sqlite3.Connection], T]]) -> Each[T]:
        """Each of ``works`` as by ``_grouped``, together; each one's error in its place."""
        done = self._group.run_all(lambda: self._db, works)
        return Each(value if error is None else error for value, error in done)

    def _hold(self, items: list[HeldItem], share: float = 1.0) -> bool:
        """Hold ``items`` back for the next transaction (see sesame.store.held)."""
        return self._group.hold(lambda: self._db, items, share)

    def flush(self, wait: float | None = None) -> None:
        self._group.flush(wait)

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

    def egress(self, first_day: int, last_day: int) -> dict[int, int]:
        rows = self._db.execute(
            "SELECT day, bytes FROM egress WHERE day BETWEEN ? AND ? AND bytes > 0",
            (first_day, last_day),
        )
        return {day: served for day, served in rows}

    def add_event(self, event: DownloadEvent) -> None:
        self._db.execute(ADD_EVENT, _event_row(event))

    def note_event(self, event: DownloadEvent) -> None:
        # Held back, as a download through an unlimited link is; else written now, after
        # what is held (rows stay in the order they came), and waiting only briefly for a
        # store already seen failing: a batch of such requests hears 503 at once, not each
        # after the whole timeout in turn; and its commit says the store works again.
        if self._hold([event], NOTES_SHARE):
            return
        row = _event_row(event)

        def write(db: sqlite3.Connection) -> None:
            db.execute(ADD_EVENT, row)

        if self._group.failing:
            self._group.run_briefly(lambda: self._db, write, NOTE_WAIT)
        else:
            self._grouped(write)

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
        # Only a note: a call reading through the API does not wait the store's timeout on
        # another's lock for it, and goes unnoted instead (the next use notes it).
        db = self._db
        try:
            with busy_for(db, TOUCH_WAIT, self.timeout):
                db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_id))
        except sqlite3.OperationalError as exc:
            if not _locked(exc):
                raise

    def backup(self, target: Path) -> None:
        backup_sqlite(self._db, target)

    def close(self) -> None:
        try:
            self._group.close()  # what is held back is written first
        except Exception as exc:  # the connections are released all the same
            log.error("the last downloads' rows could not be written: %s", exc)
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def ping(self) -> None:
        # A write lock taken and let go: a locked, read-only or damaged file fails here, a
        # locked one (by another process, or by this one's writers waiting for it) after
        # PING_WAIT rather than the store's whole timeout.
        db = self._db
        with busy_for(db, PING_WAIT, self.timeout), self._transaction(PING_WAIT):
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        # A write that fails for want of room happens only at a commit: look at the room.
        room = os.statvfs(self.path.parent)
        if room.f_bavail * room.f_frsize < MIN_ROOM:
            raise sqlite3.OperationalError("database or disk is full")

    def seen_once(self, key: str, now: int, ttl: int) -> bool:
        with self._transaction() as db:
            # Made here rather than in SCHEMA: a table of a few minutes of keys, no history.
            db.execute(ONCE_SCHEMA)
            db.execute("DELETE FROM once WHERE until < ?", (now,))
            cursor = db.execute(
                "INSERT OR IGNORE INTO once (key, until) VALUES (?, ?)", (key, now + ttl)
            )
            return cursor.rowcount == 1

    def _reconnect(self) -> None:
        """Forget this thread's connection after a failure (unless a transaction is still
        open on it): SQLite keeps a file it opened read-only so for good, and a fresh
        connection sees the file as it is now."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.in_transaction:
            return
        self._local.conn = None
        with self._guard:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()


def _private_file(path: Path) -> None:
    """Make ``path`` (and its folder, if new) readable by its owner only: 0600 in 0700.
    SQLite gives the ``-wal`` and ``-shm`` files the database's own mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)


def _link_row(link: Link) -> tuple[Any, ...]:
    return astuple(link)


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


def _to_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the file in WAL mode (nothing to do once it is). Leaving a rollback journal
    needs the file to itself, and while another connection is writing it in that mode
    (another process making a new database at the same moment: the gateway and the
    dashboard at a first start) SQLite answers "locked" at once, without its busy wait:
    tried again for up to ``timeout``, as a write waits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(WAL_RETRY)  # the other's write ends soon, as a busy wait would poll


def _locked(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds a lock the statement needed."""
    return exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
