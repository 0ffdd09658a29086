"""What the Redis store answers about its log and forgets of it: kept apart from
``redis.py``, which holds the records and the download path.

Redis forgets on its own too: a link's record expires SESAME_RETENTION after the link does,
its own log list that long after its last row, and the log stream is trimmed by age on every
write. ``drop_ended`` adds what those miss: links revoked long before they expire, the index
of links, the rows of forgotten links in the stream, and a stream nobody writes to.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from itertools import islice
from typing import Any, cast

import redis

from sesame.activity import UNKNOWN_FILE, DayFile, LogFilter, LogRow, Totals
from sesame.models import DownloadEvent, Link, Outcome

PREFIX = "sesame:"
LINKS = PREFIX + "links"  # link ids, scored by creation time
EVENTS = PREFIX + "events"


class RedisLog:
    """The log's side of RedisStore; needs its ``redis`` and ``retention``."""

    redis: redis.Redis
    retention: int

    def drop_ended(self, before: int, batch: int) -> int:
        gone_all: set[str] = set()
        start = 0
        while True:
            # A link made at or after ``before`` cannot have ended before it.
            ids = cast(
                list[str],
                self.redis.zrangebyscore(LINKS, "-inf", f"({before}", start=start, num=batch),
            )
            if not ids:
                break
            gone = self._ended(ids, before)
            self._forget(gone)
            gone_all.update(gone)
            start += len(ids) - len(gone)
        self.redis.xtrim(EVENTS, minid=int((time.time() - self.retention) * 1000))
        if gone_all:
            self._drop_rows(gone_all, batch)
        return len(gone_all)

    def _drop_rows(self, link_ids: set[str], batch: int) -> None:
        """Delete the stream's rows of ``link_ids``: one pass over the stream, ``batch``
        entries at a time (stream ids are not by link, so there is no shorter way)."""
        after = "-"
        while True:
            entries = cast(
                list[tuple[str, dict[str, str]]],
                self.redis.xrange(EVENTS, min=after, count=batch),
            )
            if not entries:
                return
            doomed = [
                entry_id
                for entry_id, fields in entries
                if json.loads(fields["e"])["link_id"] in link_ids
            ]
            if doomed:
                self.redis.xdel(EVENTS, *doomed)
            after = "(" + entries[-1][0]

    def _ended(self, ids: list[str], before: int) -> list[str]:
        """Those of ``ids`` that ended before ``before``, or whose record is gone."""
        with self.redis.pipeline(transaction=False) as pipe:
            for link_id in ids:
                pipe.hmget(f"{PREFIX}link:{link_id}", "expires_at", "revoked_at")
            records: list[list[Any]] = pipe.execute()
        return [
            link_id
            for link_id, (expires, revoked) in zip(ids, records, strict=True)
            if expires is None or min(int(expires), int(revoked or expires)) < before
        ]

    def _forget(self, ids: list[str]) -> None:
        if not ids:
            return
        with self.redis.pipeline(transaction=True) as pipe:
            for link_id in ids:
                pipe.delete(f"{PREFIX}link:{link_id}", f"{EVENTS}:{link_id}")
            pipe.zrem(LINKS, *ids)
            pipe.execute()


class RedisQueries:
    """What the pages ask of the Redis log. The log is a stream in time order with no
    secondary index, so these read the part of the stream a filter's period covers, a
    thousand entries at a time, and add up as they go: memory stays small, but the time
    grows with the rows in the period (see bench/RESULTS.md)."""

    redis: redis.Redis

    def list_links(self) -> list[Link]:
        raise NotImplementedError

    def log_page(self, query: LogFilter, limit: int, offset: int = 0) -> list[LogRow]:
        return list(islice(self._matching(query, newest_first=True), offset, offset + limit))

    def log_rows(self, query: LogFilter) -> Iterator[LogRow]:
        return self._matching(query, newest_first=False)

    def log_totals(self, query: LogFilter) -> Totals:
        counts = Counter[str]()
        clients: set[str] = set()
        for row in self._matching(query, newest_first=False):
            event = row.event
            counts["downloads"] += event.counted
            counts["rows"] += 1
            counts["bytes_sent"] += event.bytes_sent
            if event.outcome in (Outcome.ABORTED, Outcome.PREVIEW):
                counts[str(event.outcome)] += 1
            if event.client_ip:
                clients.add(event.client_ip)
        return Totals(
            counts["downloads"],
            counts["aborted"],
            counts["preview"],
            counts["bytes_sent"],
            len(clients),
            counts["rows"],
        )

    def log_series(self, query: LogFilter, utc_offset: int = 0) -> list[DayFile]:
        sums: dict[tuple[str, str], list[int]] = {}
        for row in self._matching(query, newest_first=False):
            day = time.strftime("%Y-%m-%d", time.gmtime(row.event.at + utc_offset))
            pair = sums.setdefault((day, row.file), [0, 0])
            pair[0] += row.event.counted
            pair[1] += row.event.bytes_sent
        return [DayFile(day, file, *sums[day, file]) for day, file in sorted(sums)]

    def outcome_counts(self, link_ids: Collection[str]) -> dict[str, dict[str, int]]:
        ids = list(link_ids)
        with self.redis.pipeline(transaction=False) as pipe:
            for link_id in ids:
                pipe.lrange(f"{EVENTS}:{link_id}", 0, -1)
            logs: list[list[str]] = pipe.execute()
        counts: dict[str, dict[str, int]] = {}
        for link_id, rows in zip(ids, logs, strict=True):
            if rows:
                counts[link_id] = dict(Counter(json.loads(row)["outcome"] for row in rows))
        return counts

    # The links' states change with time and are not indexed: these read every record.
    def link_counts(self, now: float) -> dict[str, int]:
        return dict(Counter(str(link.status(now)) for link in self.list_links()))

    def links_page(
        self, now: float, statuses: Collection[str], files: Collection[str], limit: int
    ) -> list[Link]:
        chosen = (
            link
            for link in self.list_links()
            if (not statuses or link.status(now) in statuses) and (not files or link.file in files)
        )
        return list(islice(chosen, limit))

    def link_files(self) -> list[str]:
        files: set[str] = set()
        for ids in _chunked(self.redis.zscan_iter(LINKS, count=1000), 1000):
            with self.redis.pipeline(transaction=False) as pipe:
                for link_id, _ in ids:
                    pipe.hget(f"{PREFIX}link:{link_id}", "file")
                files.update(file for file in pipe.execute() if file)
        return sorted(files)

    def _matching(self, query: LogFilter, newest_first: bool) -> Iterator[LogRow]:
        links = _LinkCache(self.redis)
        for chunk in self._entries(query, newest_first):
            events = [_event(json.loads(data)) for data in chunk]
            links.fetch({event.link_id for event in events})
            for event in events:
                file, recipient = links.get(event.link_id)
                row = LogRow(event, file, recipient)
                if _selected(query, row):
                    yield row

    def _entries(self, query: LogFilter, newest_first: bool) -> Iterator[list[str]]:
        """The log's raw rows, a chunk at a time: of one link from its own list, else from
        the stream, starting from an hour before ``since`` (stream ids are the server's
        time of writing, which may run a little behind or ahead of the gateways')."""
        if query.link_id is not None:
            rows = cast(list[str], self.redis.lrange(f"{EVENTS}:{query.link_id}", 0, -1))
            yield rows if newest_first else rows[::-1]
            return
        low = "-" if query.since is None else str(max(0, int((query.since - 3600) * 1000)))
        high = "+"
        while True:
            entries = cast(
                list[tuple[str, dict[str, str]]],
                self.redis.xrevrange(EVENTS, max=high, min=low, count=_CHUNK)
                if newest_first
                else self.redis.xrange(EVENTS, min=low, max=high, count=_CHUNK),
            )
            if not entries:
                return
            yield [fields["e"] for _, fields in entries]
            if newest_first:
                high = "(" + entries[-1][0]
            else:
                low = "(" + entries[-1][0]


_CHUNK = 1000


class _LinkCache:
    """Each link's file and recipient, fetched once per query."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.known: dict[str, tuple[str, str | None]] = {}

    def fetch(self, link_ids: set[str]) -> None:
        """Look up those of ``link_ids`` not known yet, in one round trip."""
        wanted = [link_id for link_id in link_ids if link_id not in self.known]
        with self.redis.pipeline(transaction=False) as pipe:
            for link_id in wanted:
                pipe.hmget(f"{PREFIX}link:{link_id}", "file", "recipient")
            found: list[list[str | None]] = pipe.execute() if wanted else []
        for link_id, (file, recipient) in zip(wanted, found, strict=True):
            self.known[link_id] = (file or UNKNOWN_FILE, recipient if file else None)

    def get(self, link_id: str) -> tuple[str, str | None]:
        return self.known[link_id]


def _selected(query: LogFilter, row: LogRow) -> bool:
    event = row.event
    if query.since is not None and event.at < query.since:
        return False
    if query.until is not None and event.at >= query.until:
        return False
    if query.files and row.file not in query.files:
        return False
    if query.outcomes and str(event.outcome) not in query.outcomes:
        return False
    if needle := query.needle:
        fields = (row.recipient, event.link_id, event.client_ip, event.user_agent)
        return any(needle in (field or "").casefold() for field in fields)
    return True


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _event(data: dict[str, Any]) -> DownloadEvent:
    return DownloadEvent(**{**data, "outcome": Outcome(data["outcome"])})
