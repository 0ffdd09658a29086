"""What the SQLite store answers about its log and forgets of it: kept apart from
``sqlite.py``, which holds the records and the download path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager

# Links that ended (expired or were revoked) before :before.
_ENDED = "(expires_at < :before OR revoked_at < :before)"
_ROWS_OF_ENDED = f"""DELETE FROM downloads WHERE id IN (
    SELECT downloads.id FROM links JOIN downloads ON downloads.link_id = links.id
    WHERE {_ENDED} LIMIT :batch)"""
_BATCH_OF_ENDED = f"SELECT id FROM links WHERE {_ENDED} ORDER BY id LIMIT :batch"


class SQLiteLog:
    """The log's side of SQLiteStore; needs its ``_db`` and ``_transaction``."""

    @property
    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def drop_ended(self, before: int, batch: int) -> int:
        params = {"before": before, "batch": batch}
        while self._write(_ROWS_OF_ENDED, params):
            pass
        dropped = 0
        while forgotten := self._forget_links(params):
            dropped += forgotten
        return dropped

    def _write(self, statement: str, params: dict[str, int]) -> int:
        with self._transaction() as db:
            return db.execute(statement, params).rowcount

    def _forget_links(self, params: dict[str, int]) -> int:
        """One batch of ended links, with what still names them (a row logged since)."""
        with self._transaction() as db:
            ids = [link_id for (link_id,) in db.execute(_BATCH_OF_ENDED, params)]
            for chunk in _chunks(ids, 400):  # within SQLite's bound parameters
                marks = ", ".join("?" * len(chunk))
                db.execute(f"DELETE FROM downloads WHERE link_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM issues WHERE link_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM links WHERE id IN ({marks})", chunk)
        return len(ids)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
