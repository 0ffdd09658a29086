"""What the SQLite store answers about its log and forgets of it: kept apart from
``sqlite.py``, which holds the records and the download path."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from sesame.activity import UNKNOWN_FILE, DayFile, LogFilter, LogRow, Totals, iso_day
from sesame.models import DownloadEvent, Link, Outcome
from sesame.store.casefold import WIDE_GLOB, folds_glob, needs_casefold
from sesame.store.split import Split
from sesame.store.sqlite_rollup import (
    CLIENTS,
    SOURCE,
    SUMS,
    SQLiteRollup,
    file_name,
    where_sums,
)

# A link's status at :now, as Link.status() tells it.
_STATUS = """CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
    WHEN max_downloads IS NOT NULL AND downloads >= max_downloads THEN 'used up'
    WHEN :now > expires_at THEN 'expired' ELSE 'active' END"""

# Links that ended (expired or were revoked) before :before.
_ENDED = "(expires_at < :before OR revoked_at < :before)"
_ROWS_OF_ENDED = f"""DELETE FROM downloads WHERE id IN (
    SELECT downloads.id FROM links JOIN downloads ON downloads.link_id = links.id
    WHERE {_ENDED} LIMIT :batch)"""
_BATCH_OF_ENDED = f"SELECT id FROM links WHERE {_ENDED} ORDER BY id LIMIT :batch"


class SQLiteLog(SQLiteRollup):
    """The log's side of SQLiteStore; needs its ``_db`` and ``_transaction``."""

    def drop_ended(self, before: int, batch: int) -> int:
        params = {"before": before, "batch": batch}
        while self._write(_ROWS_OF_ENDED, params):
            pass
        dropped = 0
        while forgotten := self._forget_links(params):
            dropped += forgotten
        with self._transaction() as db:
            self._tidy_sums(db)
        return dropped

    # -- what the pages show ------------------------------------------------------------

    def log_page(self, query: LogFilter, limit: int, offset: int = 0) -> list[LogRow]:
        clause, params = where(query)
        rows = self._db.execute(
            f"SELECT {_ROW_COLUMNS} {_FROM}{clause} ORDER BY d.id DESC LIMIT :limit OFFSET :offset",
            {**params, "limit": limit, "offset": offset},
        )
        return [_log_row(row) for row in rows]

    def log_rows(self, query: LogFilter) -> Iterator[LogRow]:
        clause, params = where(query)
        cursor = self._db.execute(f"SELECT {_ROW_COLUMNS} {_FROM}{clause} ORDER BY d.id", params)
        while chunk := cursor.fetchmany(1000):
            yield from map(_log_row, chunk)

    def log_totals(self, query: LogFilter) -> Totals:
        with self._split(query, 0) as split:
            return self._totals(query, split)

    def _totals(self, query: LogFilter, split: Split | None) -> Totals:
        clause, params = where(query)
        joined = bool(query.files or query.needle)
        source, params = _source(split, joined, params)
        if split is None:
            # Every row read one by one (a text search, one link's log): in one pass, which
            # matches the text once rather than once for the sums and again for the clients.
            per_client = f"""SELECT COALESCE(d.client_ip, '') AS ip, SUM(d.counted) AS c,
                    SUM(d.outcome = 'aborted') AS a, SUM(d.outcome = 'preview') AS p,
                    SUM(d.bytes_sent) AS b, COUNT(*) AS n {source}{clause} GROUP BY 1"""
            return Totals(
                *self._db.execute(
                    f"""SELECT COALESCE(SUM(c), 0), COALESCE(SUM(a), 0), COALESCE(SUM(p), 0),
                           COALESCE(SUM(b), 0), COUNT(CASE WHEN ip != '' THEN 1 END),
                           COALESCE(SUM(n), 0) FROM ({per_client})""",
                    params,
                ).fetchone()
            )
        downloads, aborted, previews, sent, rows = self._db.execute(
            f"""SELECT COALESCE(SUM(d.counted), 0), COALESCE(SUM(d.outcome = 'aborted'), 0),
                   COALESCE(SUM(d.outcome = 'preview'), 0), COALESCE(SUM(d.bytes_sent), 0),
                   COUNT(*) {source}{clause}""",
            params,
        ).fetchone()
        known = f"{' AND' if clause else ' WHERE'} COALESCE(d.client_ip, '') != ''"
        # GROUP BY sorts: three times faster than COUNT(DISTINCT) over a million rows.
        read = f"SELECT d.client_ip AS ip {source}{clause}{known} GROUP BY 1"
        more, more_params = where_sums(query)
        params |= more_params
        # Those of the days' sets, and those of the rows read that no day's set holds (a
        # few: a UNION would sort them all again).
        addresses = f"""SELECT
            (SELECT COUNT(DISTINCT client_ip) FROM {CLIENTS}{more})  -- in order: no sort
            + (SELECT COUNT(*) FROM ({read}) AS v
               WHERE NOT EXISTS (SELECT 1 FROM {CLIENTS}{more} AND c.client_ip = v.ip))"""
        summed = self._db.execute(
            f"""SELECT COALESCE(SUM(counted), 0),
                   COALESCE(SUM(CASE WHEN outcome = 'aborted' THEN rows END), 0),
                   COALESCE(SUM(CASE WHEN outcome = 'preview' THEN rows END), 0),
                   COALESCE(SUM(bytes), 0), COALESCE(SUM(rows), 0) FROM {SUMS}{more}""",
            params,
        ).fetchone()
        downloads, aborted, previews, sent, rows = (
            a + b for a, b in zip((downloads, aborted, previews, sent, rows), summed, strict=True)
        )
        (clients,) = self._db.execute(addresses, params).fetchone()
        return Totals(downloads, aborted, previews, sent, clients, rows)

    def log_series(self, query: LogFilter, utc_offset: int = 0) -> list[DayFile]:
        with self._split(query, utc_offset) as split:
            return self._series(query, split, utc_offset)

    def _series(self, query: LogFilter, split: Split | None, utc_offset: int) -> list[DayFile]:
        clause, params = where(query)
        # Summed per day and link first, then per file: one look-up of a link per day it
        # was used rather than one per row, unless the filter needs the link's columns.
        joined = bool(query.files or query.needle)
        inner, params = _source(split, joined, params)
        rows = self._db.execute(
            f"""SELECT day, COALESCE(l.file, '{UNKNOWN_FILE}') AS file, SUM(n), SUM(b) FROM (
                   SELECT CAST((d.at + :utc_offset) / 86400 AS INTEGER) AS day, d.link_id AS id,
                       SUM(d.counted) AS n, SUM(d.bytes_sent) AS b {inner}{clause}
                   GROUP BY day, d.link_id)
               LEFT JOIN links AS l USING (id)
               GROUP BY day, file""",
            {**params, "utc_offset": utc_offset},
        ).fetchall()
        if split is not None:
            more, more_params = where_sums(query)
            rows += [
                (day, file_name(file), n, b)
                for day, file, n, b in self._db.execute(
                    f"""SELECT day, file, SUM(counted), SUM(bytes) FROM {SUMS}{more}
                        GROUP BY day, file HAVING SUM(rows) > 0""",
                    params | more_params,
                )
            ]
        sums: dict[tuple[int, str], list[int]] = {}
        for day, file, n, b in rows:
            pair = sums.setdefault((day, file), [0, 0])
            pair[0] += n
            pair[1] += b
        return [DayFile(iso_day(day), file, *sums[day, file]) for day, file in sorted(sums)]

    def outcome_counts(self, link_ids: Collection[str]) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for chunk in _chunks(list(link_ids), 400):
            marks = ", ".join("?" * len(chunk))
            rows = self._db.execute(
                f"""SELECT link_id, outcome, COUNT(*) FROM downloads
                    WHERE link_id IN ({marks}) GROUP BY link_id, outcome""",
                chunk,
            )
            for link_id, outcome, count in rows:
                counts.setdefault(link_id, {})[outcome] = count
        return counts

    def link_counts(self, now: float) -> dict[str, int]:
        rows = self._db.execute(
            f"SELECT {_STATUS} AS status, COUNT(*) FROM links GROUP BY status", {"now": now}
        )
        return dict(rows.fetchall())

    def links_page(
        self, now: float, statuses: Collection[str], files: Collection[str], limit: int
    ) -> list[Link]:
        from sesame.store.sqlite import LINK_COLUMNS, _link  # sqlite.py imports this module

        clauses: list[str] = []
        params: dict[str, Any] = {"now": now, "limit": limit}
        for name, column, values in (("s", _STATUS, statuses), ("f", "file", files)):
            if values:
                marks = [f":{name}{n}" for n in range(len(values))]
                clauses.append(f"{column} IN ({', '.join(marks)})")
                params.update({m[1:]: v for m, v in zip(marks, values, strict=True)})
        clause = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._db.execute(
            f"SELECT {LINK_COLUMNS} FROM links{clause} ORDER BY created_at DESC, id LIMIT :limit",
            params,
        )
        return [_link(row) for row in rows]

    def link_files(self) -> list[str]:
        return [
            file for (file,) in self._db.execute("SELECT DISTINCT file FROM links ORDER BY file")
        ]

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


_FROM = "FROM downloads AS d LEFT JOIN links AS l ON l.id = d.link_id"


def _source(
    split: Split | None, joined: bool, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The FROM of the rows a query reads one by one: all of them without a Split, else
    those it leaves to be read; with the links' columns if ``joined``."""
    rows = "downloads" if split is None else SOURCE
    source = f"FROM {rows} AS d" + (" LEFT JOIN links AS l ON l.id = d.link_id" if joined else "")
    return source, params if split is None else params | split.params()


# LIKE folds ASCII letters only: where that may miss what casefold finds
# (casefold.needs_casefold), a field it does not match, and that may hold the needle by
# casefold (the GLOBs of casefold), goes to Python's casefold (the function holds, on each
# connection).
_COLUMNS = ("l.recipient", "d.link_id", "d.client_ip", "d.user_agent")
_LIKE = " OR ".join(f"{column} LIKE :like ESCAPE '\\'" for column in _COLUMNS)
_CASEFOLD = _LIKE + "".join(
    f" OR ({column} GLOB :wide AND {column} GLOB :folds AND holds({column}, :needle))"
    for column in _COLUMNS
)


_ROW_COLUMNS = (
    "d.link_id, d.at, d.client_ip, d.user_agent, d.status, d.bytes_sent, d.outcome, d.counted,"
    " l.file, l.recipient"
)


def _log_row(row: tuple[Any, ...]) -> LogRow:
    link_id, at, client_ip, user_agent, status, sent, outcome, counted, file, recipient = row
    event = DownloadEvent(
        link_id, at, client_ip, user_agent, status, sent, Outcome(outcome), bool(counted)
    )
    return LogRow(event, file or UNKNOWN_FILE, recipient)


# A NUL would end LIKE's and GLOB's patterns early ('a\0b' finding whatever holds 'a'):
# such a needle is matched by Python's casefold alone, row by row.
_BY_PYTHON = " OR ".join(f"holds({column}, :needle)" for column in _COLUMNS)


def _clause(needle: str) -> str:
    if "\0" in needle:
        return _BY_PYTHON
    return _CASEFOLD if needs_casefold(needle) else _LIKE


def where(query: LogFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of ``query`` over ``_FROM``, and its parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if query.since is not None:
        clauses.append("d.at >= :since")
        params["since"] = query.since
    if query.until is not None:
        clauses.append("d.at < :until")
        params["until"] = query.until
    if query.link_id is not None:
        clauses.append("d.link_id = :link")
        params["link"] = query.link_id
    for name, column, values in (("f", "l.file", query.files), ("o", "d.outcome", query.outcomes)):
        if values:
            marks = [f":{name}{n}" for n in range(len(values))]
            clauses.append(f"{column} IN ({', '.join(marks)})")
            params.update({mark[1:]: value for mark, value in zip(marks, values, strict=True)})
    if query.needle:
        escaped = query.needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(f"({_clause(query.needle)})")
        params |= {"like": f"%{escaped}%", "wide": WIDE_GLOB, "needle": query.needle}
        params["folds"] = folds_glob(query.needle)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
