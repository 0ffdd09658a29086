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
from typing import Any, cast

import redis

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
