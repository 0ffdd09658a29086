"""What the Redis store answers about its log and forgets of it: kept apart from
``redis.py``, which holds the records and the download path.

Redis forgets on its own too: a link's record expires SESAME_RETENTION after the link does,
and its own log list that long after its last row. ``drop_ended`` does the rest: links
revoked long before they expire, the index of links, the rows of forgotten links in the
stream, and the stream's entries written more than SESAME_RETENTION ago (exactly, and out
of the log's sums with them: see redis_rollup).
"""

from __future__ import annotations

import time
from typing import Any, cast

import redis

from sesame.store.redis_keys import EVENTS, LINKS, PREFIX
from sesame.store.redis_rollup import FILES, RedisRollup
from sesame.store.redis_status import lapse, unindex


class RedisLog(RedisRollup):
    """The log's side of RedisStore; needs its ``redis`` and ``retention``."""

    redis: redis.Redis
    retention: int

    def drop_ended(self, before: int, batch: int) -> int:
        self._up_to_date()
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
        lapse(self.redis, time.time() - self.retention)
        self._trim(int((time.time() - self.retention) * 1000), batch)
        if gone_all:
            self._drop_link_rows(sorted(gone_all), batch)
            with self.redis.pipeline(transaction=False) as pipe:
                for link_id in gone_all:
                    pipe.hdel(FILES, link_id)
                pipe.execute()
        return len(gone_all)

    def _ended(self, ids: list[str], before: int) -> dict[str, str | None]:
        """Those of ``ids`` that ended before ``before``, or whose record is gone, with
        their files (None: the record is gone)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for link_id in ids:
                pipe.hmget(f"{PREFIX}link:{link_id}", "expires_at", "revoked_at", "file")
            records: list[list[Any]] = pipe.execute()
        return {
            link_id: file
            for link_id, (expires, revoked, file) in zip(ids, records, strict=True)
            if expires is None or min(int(expires), int(revoked or expires)) < before
        }

    def _forget(self, links: dict[str, str | None]) -> None:
        if not links:
            return
        with self.redis.pipeline(transaction=True) as pipe:
            for link_id in links:
                pipe.delete(f"{PREFIX}link:{link_id}", f"{EVENTS}:{link_id}")
            pipe.zrem(LINKS, *links)
            unindex(pipe, links.items())
            pipe.execute()
