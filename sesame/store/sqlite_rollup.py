"""Sums of the SQLite log per day, kept beside it so that the Activity page's totals and
charts over a long period read a few rows a day instead of every row.

``roll_up`` adds log rows to the sums a batch at a time, in order of their id, behind a
cursor per day boundary (``utc_offset``: the pages ask for days in the browser's zone);
the download path never writes here. Rows are counted by the sums once their id is at or
below the cursor: a query adds the sums of the whole days of its period to the rows it
reads itself (those past the cursor, and those of the part-days at its ends).

A rolled row that changes afterwards (a download's row amended when it ended) or goes
(retention) moves the sums with it, by trigger, in the same transaction; the cursor moves
back to the last row kept, so an id SQLite hands out again is never taken for rolled.

Distinct client addresses cannot be summed: each UTC day keeps its set (``log_clients``),
and a period's count is the size of the union of its days' sets and its own rows'.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sesame.activity import UNKNOWN_FILE, LogFilter
from sesame.store.split import Split, making_way

# A rolled row's file, in the sums: '' for a row whose link is unknown.
_FILE = "COALESCE((SELECT file FROM links WHERE id = {row}.link_id), '')"


def _moved(row: str, sign: str) -> str:
    """Statements that add (``sign`` '+') or take away ('-') the row ``row`` (OLD or NEW)
    to or from the sums that count it."""
    file = _FILE.format(row=row)
    return f"""
    INSERT INTO log_days (utc_offset, day, file, outcome, rows, counted, bytes)
        SELECT r.utc_offset, CAST(({row}.at + r.utc_offset) / 86400 AS INTEGER), {file},
            {row}.outcome, {sign}1, {sign}{row}.counted, {sign}{row}.bytes_sent
        FROM rollups AS r WHERE {row}.id <= r.cursor
        ON CONFLICT DO UPDATE SET rows = rows + excluded.rows,
            counted = counted + excluded.counted, bytes = bytes + excluded.bytes;
    INSERT INTO log_clients (day, client_ip, file, outcome, rows)
        SELECT CAST({row}.at / 86400 AS INTEGER), {row}.client_ip, {file}, {row}.outcome, {sign}1
        FROM rollups AS r
        WHERE r.utc_offset = 0 AND {row}.id <= r.cursor AND COALESCE({row}.client_ip, '') != ''
        ON CONFLICT DO UPDATE SET rows = rows + excluded.rows;"""


_ROLLED = "WHEN {row}.id <= (SELECT MAX(cursor) FROM rollups)"

# What a new database gets, and migration step 4 (the sums start empty: roll_up fills them).
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rollups (
    utc_offset INTEGER PRIMARY KEY,
    cursor INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO rollups (utc_offset, cursor) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS log_days (
    utc_offset INTEGER NOT NULL,
    day INTEGER NOT NULL,
    file TEXT NOT NULL,
    outcome TEXT NOT NULL,
    rows INTEGER NOT NULL,
    counted INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (utc_offset, day, file, outcome)
) WITHOUT ROWID;
-- By address first: a period's distinct addresses are read in order, without a sort.
CREATE TABLE IF NOT EXISTS log_clients (
    client_ip TEXT NOT NULL,
    day INTEGER NOT NULL,
    file TEXT NOT NULL,
    outcome TEXT NOT NULL,
    rows INTEGER NOT NULL,
    PRIMARY KEY (client_ip, day, file, outcome)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS rolled_row_amended AFTER UPDATE ON downloads
{_ROLLED.format(row="OLD")}
BEGIN {_moved("OLD", "-")} {_moved("NEW", "+")}
END;
CREATE TRIGGER IF NOT EXISTS rolled_row_gone AFTER DELETE ON downloads
{_ROLLED.format(row="OLD")}
BEGIN {_moved("OLD", "-")}
    UPDATE rollups SET cursor = MIN(cursor, COALESCE((SELECT MAX(id) FROM downloads), 0));
END;
"""

# One batch of rows past an offset's cursor, added to its sums (and, for UTC, to the days'
# client sets). Parameters: offset, cursor, upto.
_ROLL_DAYS = """
INSERT INTO log_days (utc_offset, day, file, outcome, rows, counted, bytes)
    SELECT :offset, CAST((d.at + :offset) / 86400 AS INTEGER) AS day,
        COALESCE(l.file, '') AS f, d.outcome, COUNT(*), SUM(d.counted), SUM(d.bytes_sent)
    FROM downloads AS d LEFT JOIN links AS l ON l.id = d.link_id
    WHERE d.id > :cursor AND d.id <= :upto GROUP BY day, f, d.outcome
    ON CONFLICT DO UPDATE SET rows = rows + excluded.rows,
        counted = counted + excluded.counted, bytes = bytes + excluded.bytes"""
_ROLL_CLIENTS = """
INSERT INTO log_clients (day, client_ip, file, outcome, rows)
    SELECT CAST(d.at / 86400 AS INTEGER) AS day, d.client_ip, COALESCE(l.file, '') AS f,
        d.outcome, COUNT(*)
    FROM downloads AS d LEFT JOIN links AS l ON l.id = d.link_id
    WHERE d.id > :cursor AND d.id <= :upto AND COALESCE(d.client_ip, '') != ''
    GROUP BY day, d.client_ip, f, d.outcome
    ON CONFLICT DO UPDATE SET rows = rows + excluded.rows"""
_UPTO = "SELECT COUNT(*), MAX(id) FROM (SELECT id FROM downloads WHERE id > ? ORDER BY id LIMIT ?)"


def file_name(stored: str) -> str:
    """A file as the pages name it, from the sums' ('' for an unknown link)."""
    return stored or UNKNOWN_FILE


# The rows a Split leaves to be read, for ``where``'s clause around it (the since and
# until bounds are repeated inside, so that each part reads its own range of an index).
SOURCE = """(SELECT * FROM downloads WHERE id > :cursor
    UNION ALL SELECT * FROM downloads
        WHERE id <= :cursor AND at < :start AND at >= :low
    UNION ALL SELECT * FROM downloads WHERE id <= :cursor AND at >= :end AND at < :high)"""
# The sums' part of a Split, for ``where_sums``'s clause.
SUMS = "log_days WHERE utc_offset = :offset AND day BETWEEN :first_day AND :last_day"
CLIENTS = "log_clients AS c WHERE rows > 0 AND day BETWEEN :first_day AND :last_day"


def where_sums(query: LogFilter) -> tuple[str, dict[str, Any]]:
    """The sums' clause (after SUMS or CLIENTS) for ``query``'s files and outcomes."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for name, column, values in (("sf", "file", query.files), ("so", "outcome", query.outcomes)):
        if values:
            marks = [f":{name}{n}" for n in range(len(values))]
            clauses.append(f"{column} IN ({', '.join(marks)})")
            params.update({mark[1:]: value for mark, value in zip(marks, values, strict=True)})
    return "".join(f" AND {clause}" for clause in clauses), params


class SQLiteRollup:
    """The sums' side of SQLiteStore; needs its ``_db`` and ``_transaction``."""

    @property
    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def roll_up(self, batch: int) -> int:
        rolled = 0
        with self._transaction() as db:
            for offset, cursor in db.execute("SELECT utc_offset, cursor FROM rollups").fetchall():
                count, upto = db.execute(_UPTO, (cursor, batch)).fetchone()
                if not count:
                    continue
                params = {"offset": offset, "cursor": cursor, "upto": upto}
                db.execute(_ROLL_DAYS, params)
                if offset == 0:
                    db.execute(_ROLL_CLIENTS, params)
                db.execute("UPDATE rollups SET cursor = ? WHERE utc_offset = ?", (upto, offset))
                rolled = max(rolled, count)
        return rolled

    @contextmanager
    def _split(self, query: LogFilter, offset: int) -> Iterator[Split | None]:
        """How ``query`` divides between the sums and the rows at ``offset``'s days, None if
        the sums cannot answer it (a text or a link to match: rows only); the statements
        run inside see the database as it was when the cursor was read (one snapshot, so
        a batch rolled up meanwhile is counted once). An offset not kept yet is kept from
        now on (roll_up builds its sums)."""
        if query.needle or query.link_id is not None:
            yield None
            return
        db = self._db
        if db.execute("SELECT 1 FROM rollups WHERE utc_offset = ?", (offset,)).fetchone() is None:
            self._keep_offset(offset)
        db.execute("BEGIN")
        try:
            (cursor,) = db.execute(
                "SELECT COALESCE(MAX(cursor), 0) FROM rollups WHERE utc_offset = ?", (offset,)
            ).fetchone()
            yield Split.of(query, offset, cursor)
        finally:
            db.execute("COMMIT")

    def _keep_offset(self, offset: int) -> None:
        with self._transaction() as db:
            kept = [
                o for (o,) in db.execute("SELECT utc_offset FROM rollups WHERE utc_offset != 0")
            ]
            for old in making_way(kept):
                db.execute("DELETE FROM log_days WHERE utc_offset = ?", (old,))
                db.execute("DELETE FROM rollups WHERE utc_offset = ?", (old,))
            db.execute(
                "INSERT OR IGNORE INTO rollups (utc_offset, cursor) VALUES (?, 0)", (offset,)
            )

    def _tidy_sums(self, db: sqlite3.Connection) -> None:
        """Forget sums that retention took to nothing."""
        db.execute("DELETE FROM log_days WHERE rows <= 0")
        db.execute("DELETE FROM log_clients WHERE rows <= 0")
