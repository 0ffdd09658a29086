"""The shared store for many gateways: link records, counters and the log in Redis.

Every change that must hold across processes (taking a download, settling one, revoking)
is one Lua script, so it is atomic on the server. A link's record and its log leave Redis
``retention`` seconds after the link expires.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, fields
from typing import Any, cast

import redis

from sesame.models import DownloadEvent, Link, Outcome

PREFIX = "sesame:"
_LINK_FIELDS = {f.name for f in fields(Link)}
_INT_FIELDS = {
    "created_at",
    "expires_at",
    "max_downloads",
    "revoked_at",
    "downloads",
    "bytes_served",
    "started_at",
}

_BEGIN = """
local f = redis.call('HMGET', KEYS[1], 'created_at', 'revoked_at', 'max_downloads',
                     'downloads', 'bytes_served')
if not f[1] or f[2] then return 0 end
local counted, nbytes, cap = tonumber(ARGV[3]), tonumber(ARGV[2]), tonumber(ARGV[4])
if counted == 1 and f[3] and tonumber(f[4]) >= tonumber(f[3]) then return 0 end
if cap >= 0 and tonumber(f[5]) + nbytes > cap then return 0 end
redis.call('HINCRBY', KEYS[1], 'downloads', counted)
redis.call('HINCRBY', KEYS[1], 'bytes_served', nbytes)
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[1])
return 1
"""

_END = """
local f = redis.call('HMGET', KEYS[1], 'bytes_served', 'downloads')
if not f[1] then return 0 end
redis.call('HSET', KEYS[1], 'bytes_served', math.max(0, tonumber(f[1]) + tonumber(ARGV[1])))
if ARGV[2] == '1' and tonumber(f[2]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'downloads', -1)
end
return 1
"""

_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
return 1
"""


class RedisStore:
    """A Store in Redis, shared by any number of gateway processes and hosts."""

    def __init__(self, url: str, retention: int) -> None:
        self.retention = retention
        self.redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True)
        self._begin = self.redis.register_script(_BEGIN)
        self._end = self.redis.register_script(_END)
        self._revoke = self.redis.register_script(_REVOKE)

    def add_link(self, link: Link) -> None:
        key = _link_key(link.id)
        mapping: dict[str, str | int] = {k: v for k, v in asdict(link).items() if v is not None}
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]  # invariant key type
            pipe.expireat(key, link.expires_at + self.retention)
            pipe.zadd(PREFIX + "links", {link.id: link.created_at})
            pipe.execute()

    def get_link(self, link_id: str) -> Link | None:
        return _link(cast(dict[str, str], self.redis.hgetall(_link_key(link_id))))

    def list_links(self) -> list[Link]:
        ids = cast(list[str], self.redis.zrange(PREFIX + "links", 0, -1))
        with self.redis.pipeline(transaction=False) as pipe:
            for link_id in ids:
                pipe.hgetall(_link_key(link_id))
            records = pipe.execute()
        links = [link for link in map(_link, records) if link is not None]
        gone = [link_id for link_id, record in zip(ids, records, strict=True) if not record]
        if gone:
            self.redis.zrem(PREFIX + "links", *gone)
        return sorted(links, key=lambda link: (-link.created_at, link.id))

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        self._revoke(keys=[_link_key(link_id)], args=[at])
        return self.get_link(link_id)

    def begin_download(
        self, link_id: str, now: int, nbytes: int, counted: bool, byte_cap: int | None
    ) -> bool:
        cap = -1 if byte_cap is None else byte_cap
        args = [now, nbytes, int(counted), cap]
        return bool(self._begin(keys=[_link_key(link_id)], args=args))

    def end_download(self, link_id: str, extra_bytes: int, uncount: bool) -> None:
        self._end(keys=[_link_key(link_id)], args=[extra_bytes, int(uncount)])

    def add_event(self, event: DownloadEvent) -> None:
        data = json.dumps(asdict(event))
        per_link = PREFIX + "events:" + event.link_id
        # Stream ids are the server's wall-clock milliseconds: trim by wall-clock time.
        oldest_kept = int((time.time() - self.retention) * 1000)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(PREFIX + "events", {"e": data}, minid=oldest_kept, approximate=True)
            pipe.lpush(per_link, data)
            pipe.expire(per_link, self.retention)
            pipe.execute()

    def list_events(
        self, link_id: str | None = None, limit: int | None = None
    ) -> list[DownloadEvent]:
        if link_id is not None:
            rows = self.redis.lrange(PREFIX + "events:" + link_id, 0, (limit or 0) - 1)
        else:
            entries = cast(
                list[tuple[str, dict[str, str]]],
                self.redis.xrevrange(PREFIX + "events", count=limit),
            )
            rows = [entry["e"] for _, entry in entries]
        return [_event(json.loads(row)) for row in rows]

    def close(self) -> None:
        self.redis.close()


def _link_key(link_id: str) -> str:
    return f"{PREFIX}link:{link_id}"


def _link(record: dict[str, str]) -> Link | None:
    if not record:
        return None
    values: dict[str, Any] = {
        k: int(v) if k in _INT_FIELDS else v for k, v in record.items() if k in _LINK_FIELDS
    }
    return Link(**values)


def _event(data: dict[str, Any]) -> DownloadEvent:
    return DownloadEvent(**{**data, "outcome": Outcome(data["outcome"])})
