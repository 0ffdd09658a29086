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

from sesame.models import ApiKey, DownloadEvent, Link, Outcome, Rule

PREFIX = "sesame:"
SLOTS = PREFIX + "slots"  # downloads in flight, scored by when their lease lapses
EGRESS = PREFIX + "egress"  # bytes served per day (days since 1970-01-01, UTC)
_LINK_FIELDS = {f.name for f in fields(Link)}
_KEY_FIELDS = {f.name for f in fields(ApiKey)}
_INT_FIELDS = {
    "created_at",
    "expires_at",
    "max_downloads",
    "revoked_at",
    "downloads",
    "bytes_served",
    "started_at",
    "last_used_at",
    "rate",
}
_BOOL_FIELDS = {"landing"}

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

# KEYS: the set of leases. ARGV: lease id, now, until, cap (-1 for none).
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local cap = tonumber(ARGV[4])
if cap >= 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# KEYS: the hash of bytes per day. ARGV: day, bytes, budget (-1 for none).
_ADD_EGRESS = """
local served = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local nbytes, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
if budget >= 0 and served + nbytes > budget then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], math.max(0, served + nbytes))
return 1
"""

_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
return 1
"""

# KEYS: the issue record, the new link's record, the link index.
# ARGV: key prefix of link records, new link id, its created_at, cool-down, its expireat,
# how long the issue record is kept, then the new link's fields and values.
_ISSUE = """
local prev = redis.call('HMGET', KEYS[1], 'link', 'at')
if prev[1] and tonumber(prev[2]) + tonumber(ARGV[4]) > tonumber(ARGV[3])
   and redis.call('EXISTS', ARGV[1] .. prev[1]) == 1 then
  return prev[1]
end
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
redis.call('EXPIREAT', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[1], 'link', ARGV[2], 'at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return ARGV[2]
"""


class RedisStore:
    """A Store in Redis, shared by any number of gateway processes and hosts."""

    def __init__(self, url: str, retention: int) -> None:
        self.retention = retention
        self.redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True)
        self._begin = self.redis.register_script(_BEGIN)
        self._end = self.redis.register_script(_END)
        self._revoke = self.redis.register_script(_REVOKE)
        self._issue = self.redis.register_script(_ISSUE)
        self._take_slot = self.redis.register_script(_TAKE_SLOT)
        self._add_egress = self.redis.register_script(_ADD_EGRESS)

    def add_link(self, link: Link) -> None:
        key = _link_key(link.id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=_mapping(link))  # type: ignore[arg-type]  # invariant key type
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

    def take_slot(self, slot_id: str, now: int, until: int, cap: int | None) -> bool:
        args: list[str | int] = [slot_id, now, until, -1 if cap is None else cap]
        return bool(self._take_slot(keys=[SLOTS], args=args))

    def renew_slot(self, slot_id: str, until: int) -> None:
        self.redis.zadd(SLOTS, {slot_id: until}, xx=True)

    def drop_slot(self, slot_id: str) -> None:
        self.redis.zrem(SLOTS, slot_id)

    def count_slots(self, now: int) -> int:
        return int(self.redis.zcount(SLOTS, now, "+inf"))

    def add_egress(self, day: int, nbytes: int, budget: int | None) -> bool:
        args = [day, nbytes, -1 if budget is None else budget]
        return bool(self._add_egress(keys=[EGRESS], args=args))

    def egress(self, first_day: int, last_day: int) -> dict[int, int]:
        days = list(range(first_day, last_day + 1))
        if not days:
            return {}
        values = cast(list[str | None], self.redis.hmget(EGRESS, [str(d) for d in days]))
        return {day: int(v) for day, v in zip(days, values, strict=True) if v and int(v) > 0}

    def end_download_logged(
        self, link_id: str, extra_bytes: int, uncount: bool, event: DownloadEvent
    ) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            self._end(keys=[_link_key(link_id)], args=[extra_bytes, int(uncount)], client=pipe)
            self._queue_event(pipe, event)
            pipe.execute()

    def add_event(self, event: DownloadEvent) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            self._queue_event(pipe, event)
            pipe.execute()

    def _queue_event(self, pipe: Any, event: DownloadEvent) -> None:
        data = json.dumps(asdict(event))
        per_link = PREFIX + "events:" + event.link_id
        # Stream ids are the server's wall-clock milliseconds: trim by wall-clock time.
        oldest_kept = int((time.time() - self.retention) * 1000)
        pipe.xadd(PREFIX + "events", {"e": data}, minid=oldest_kept, approximate=True)
        pipe.lpush(per_link, data)
        pipe.expire(per_link, self.retention)

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

    def issue_link(self, scope: str, recipient: str, link: Link, cooldown: int) -> Link:
        issue_key = PREFIX + "issue:" + json.dumps([scope, recipient], ensure_ascii=False)
        pairs = [part for item in _mapping(link).items() for part in item]
        args = [
            PREFIX + "link:",
            link.id,
            link.created_at,
            cooldown,
            link.expires_at + self.retention,
            max(1, cooldown),
            *pairs,
        ]
        keys = [issue_key, _link_key(link.id), PREFIX + "links"]
        issued = self._issue(keys=keys, args=args)
        return link if issued == link.id else (self.get_link(issued) or link)

    def add_rule(self, rule: Rule, replace: bool = False) -> bool:
        data = json.dumps(asdict(rule), ensure_ascii=False)
        if replace:
            self.redis.hset(PREFIX + "rules", rule.key, data)
            return True
        return bool(self.redis.hsetnx(PREFIX + "rules", rule.key, data))

    def get_rule(self, key: str) -> Rule | None:
        data = cast(str | None, self.redis.hget(PREFIX + "rules", key))
        return Rule(**json.loads(data)) if data else None

    def list_rules(self) -> list[Rule]:
        records = cast(dict[str, str], self.redis.hgetall(PREFIX + "rules"))
        return [Rule(**json.loads(records[key])) for key in sorted(records)]

    def remove_rule(self, key: str) -> Rule | None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(PREFIX + "rules", key)
            pipe.hdel(PREFIX + "rules", key)
            data, _ = pipe.execute()
        return Rule(**json.loads(data)) if data else None

    def add_api_key(self, api_key: ApiKey) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(_api_key_key(api_key.id), mapping=_mapping(api_key))  # type: ignore[arg-type]
            pipe.set(PREFIX + "apikey-digest:" + api_key.digest, api_key.id)
            pipe.zadd(PREFIX + "apikeys", {api_key.id: api_key.created_at})
            pipe.execute()

    def find_api_key(self, digest: str) -> ApiKey | None:
        key_id = cast(str | None, self.redis.get(PREFIX + "apikey-digest:" + digest))
        return self._api_key(key_id) if key_id else None

    def list_api_keys(self) -> list[ApiKey]:
        ids = cast(list[str], self.redis.zrange(PREFIX + "apikeys", 0, -1))
        keys = [key for key in map(self._api_key, ids) if key is not None]
        return sorted(keys, key=lambda key: (-key.created_at, key.id))

    def revoke_api_key(self, key_id: str, at: int) -> ApiKey | None:
        self._revoke(keys=[_api_key_key(key_id)], args=[at])
        return self._api_key(key_id)

    def touch_api_key(self, key_id: str, at: int) -> None:
        if self.redis.exists(_api_key_key(key_id)):
            self.redis.hset(_api_key_key(key_id), "last_used_at", at)

    def _api_key(self, key_id: str) -> ApiKey | None:
        record = cast(dict[str, str], self.redis.hgetall(_api_key_key(key_id)))
        return ApiKey(**_values(record, _KEY_FIELDS)) if record else None

    def close(self) -> None:
        self.redis.close()


def _link_key(link_id: str) -> str:
    return f"{PREFIX}link:{link_id}"


def _api_key_key(key_id: str) -> str:
    return f"{PREFIX}apikey:{key_id}"


def _mapping(record: Link | ApiKey) -> dict[str, str | int]:
    """A record as a Redis hash: no None values, booleans as 0 and 1."""
    return {
        k: int(v) if isinstance(v, bool) else v for k, v in asdict(record).items() if v is not None
    }


def _values(record: dict[str, str], names: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name not in names:
            continue
        if name in _INT_FIELDS:
            values[name] = int(value)
        elif name in _BOOL_FIELDS:
            values[name] = value == "1"
        else:
            values[name] = value
    return values


def _link(record: dict[str, str]) -> Link | None:
    if not record:
        return None
    return Link(**_values(record, _LINK_FIELDS))


def _event(data: dict[str, Any]) -> DownloadEvent:
    return DownloadEvent(**{**data, "outcome": Outcome(data["outcome"])})
