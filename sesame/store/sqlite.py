"""The embedded default store: one SQLite file in WAL mode, shared by every local process."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import astuple
from pathlib import Path
from typing import Any

from sesame.models import DownloadEvent, Link, Outcome

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
    started_at INTEGER
);
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY,
    link_id TEXT NOT NULL,
    at REAL NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    status INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS downloads_by_link ON downloads (link_id, at);
CREATE INDEX IF NOT EXISTS downloads_by_time ON downloads (at);
"""

LINK_COLUMNS = (
    "id, file, created_at, expires_at, max_downloads, recipient, note, revoked_at, downloads,"
    " bytes_served, started_at"
)
EVENT_COLUMNS = "link_id, at, client_ip, user_agent, status, bytes_sent, outcome"


class SQLiteStore:
    """A Store on one SQLite file; one connection per thread, autocommit, WAL."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._db.executescript(SCHEMA)

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

    def add_link(self, link: Link) -> None:
        self._db.execute(
            f"INSERT INTO links ({LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _link_row(link),
        )

    def get_link(self, link_id: str) -> Link | None:
        row = self._db.execute(
            f"SELECT {LINK_COLUMNS} FROM links WHERE id = ?", (link_id,)
        ).fetchone()
        return Link(*row) if row else None

    def list_links(self) -> list[Link]:
        rows = self._db.execute(
            f"SELECT {LINK_COLUMNS} FROM links ORDER BY created_at DESC, id"
        ).fetchall()
        return [Link(*row) for row in rows]

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        self._db.execute(
            "UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (at, link_id)
        )
        return self.get_link(link_id)

    def begin_download(
        self, link_id: str, now: int, nbytes: int, counted: bool, byte_cap: int | None
    ) -> bool:
        cursor = self._db.execute(
            """UPDATE links SET downloads = downloads + :counted,
                   bytes_served = bytes_served + :nbytes,
                   started_at = COALESCE(started_at, :now)
               WHERE id = :id AND revoked_at IS NULL
                 AND (:counted = 0 OR max_downloads IS NULL OR downloads < max_downloads)
                 AND (:cap IS NULL OR bytes_served + :nbytes <= :cap)""",
            {"id": link_id, "now": now, "nbytes": nbytes, "counted": int(counted), "cap": byte_cap},
        )
        return cursor.rowcount == 1

    def end_download(self, link_id: str, extra_bytes: int, uncount: bool) -> None:
        self._db.execute(
            """UPDATE links SET bytes_served = MAX(0, bytes_served + :extra),
                   downloads = MAX(0, downloads - :uncount)
               WHERE id = :id""",
            {"id": link_id, "extra": extra_bytes, "uncount": int(uncount)},
        )

    def add_event(self, event: DownloadEvent) -> None:
        self._db.execute(
            f"INSERT INTO downloads ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.link_id,
                event.at,
                event.client_ip,
                event.user_agent,
                event.status,
                event.bytes_sent,
                event.outcome.value,
            ),
        )

    def list_events(
        self, link_id: str | None = None, limit: int | None = None
    ) -> list[DownloadEvent]:
        query = f"SELECT {EVENT_COLUMNS} FROM downloads"
        params: list[Any] = []
        if link_id is not None:
            query += " WHERE link_id = ?"
            params.append(link_id)
        query += " ORDER BY at DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._db.execute(query, params).fetchall()
        return [_event(row) for row in rows]

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _link_row(link: Link) -> tuple[Any, ...]:
    return astuple(link)


def _event(row: tuple[Any, ...]) -> DownloadEvent:
    link_id, at, client_ip, user_agent, status, bytes_sent, outcome = row
    return DownloadEvent(link_id, at, client_ip, user_agent, status, bytes_sent, Outcome(outcome))
