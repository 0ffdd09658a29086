"""The shared store for many gateways: link records, counters and the log in Redis.

Every change that must hold across processes (taking a download, settling one, revoking)
is one Lua script, so it is atomic on the server. A link's record and its log leave Redis
``retention`` seconds after the link expires.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sesame.errors import BackupError
from sesame.models import (
    ApiKey,
    DownloadEnd,
    DownloadEvent,
    DownloadStart,
    Link,
    Outcome,
    Refusal,
    Rule,
)
from sesame.store.backup import REDIS_ADVICE
from sesame.store.base import Each, each
from sesame.store.migrations import migrate_redis
from sesame.store.redis_batch import Call, run_each
from sesame.store.redis_keys import EVENTS, LINKS, PREFIX
from sesame.store.redis_log import RedisLog
from sesame.store.redis_queries import LINK_CHUNK, RedisQueries
from sesame.store.redis_rollup import UNROLL
from sesame.store.redis_status import INDEX, INDEX_LINKS

SLOTS = PREFIX + "slots"  # downloads in flight, scored by when their lease lapses
EGRESS = PREFIX + "egress"  # bytes served per day (days since 1970-01-01, UTC)
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

# A link record's fields in Link's order, each with how its text becomes a value and the
# value when the field is absent (a record written before the field was).
_LINK_ORDER = [f.name for f in fields(Link)]
_LINK_READ = [
    (int if f.name in _INT_FIELDS else "1".__eq__ if f.name in _BOOL_FIELDS else str, f.default)
    for f in fields(Link)
]
_EVENT_FIELDS = [field.name for field in fields(DownloadEvent)]  # a log row's, in order

# ARGV: link ids, then the fields to read. Returns each one's fields (all nil if it is gone).
_RECORDS = """
local records, names = {}, {unpack(ARGV, tonumber(ARGV[1]) + 2)}
for i = 1, tonumber(ARGV[1]) do
  records[i] = redis.call('HMGET', '{PREFIX}link:' .. ARGV[i + 1], unpack(names))
end
return records
""".replace("{PREFIX}", PREFIX)

# Appends a row to the log (a stream, trimmed by the retention sweep: see redis_rollup) and
# to its link's own log (a list kept as long as the link's record); settles a download on
# its link and its day.
_LOG_ROW = (
    INDEX
    + """
local function log_row(log, link_log, row, keep)
  redis.call('XADD', log, '*', 'e', row)
  redis.call('LPUSH', link_log, row)
  redis.call('EXPIRE', link_log, keep)
end
local function settle(link, egress, extra, uncount, day)
  if extra ~= 0 or uncount then
    local f = redis.call('HMGET', link, 'bytes_served', 'downloads')
    if f[1] then
      redis.call('HSET', link, 'bytes_served', math.max(0, tonumber(f[1]) + extra))
      if uncount and tonumber(f[2]) > 0 then
        redis.call('HINCRBY', link, 'downloads', -1)
        index_link(string.sub(link, string.len('{PREFIX}link:') + 1))
      end
    end
  end
  if extra ~= 0 then
    local served = tonumber(redis.call('HGET', egress, day) or '0')
    redis.call('HSET', egress, day, math.max(0, served + extra))
  end
end
""".replace("{PREFIX}", PREFIX)
)

# Leases: what settling a download needs, by lease id, and the leases of each session (the
# pieces of one client's download, see models.DownloadStart.session). Keys are named from the
# records, so these scripts need a single Redis server (not a cluster).
_LEASES = """
local function session_ends(id, counted, session, delivered, completed, final)
  -- What becomes of a leased download's count as it ends (see SQLiteStore._session_ends).
  local members = '{PREFIX}session:' .. session
  if completed and final and not counted and session ~= '' then
    for _, other in ipairs(redis.call('SMEMBERS', members)) do
      if redis.call('HGET', '{PREFIX}lease:' .. other, 'counted') == '1' then
        redis.call('HSET', '{PREFIX}lease:' .. other, 'delivered', 1)
      end
    end
  end
  if not counted then return '' end
  if completed or delivered then
    if session ~= '' then redis.call('SET', '{PREFIX}recent:' .. session, 1, 'EX', 60) end
    return 'kept'
  end
  if session ~= '' then
    for _, other in ipairs(redis.call('SMEMBERS', members)) do
      if other ~= id and redis.call('EXISTS', '{PREFIX}lease:' .. other) == 1 then
        redis.call('HSET', '{PREFIX}lease:' .. other, 'counted', 1)
        return 'passed'
      end
    end
  end
  return 'given back'
end
local function forget_lease(leases, id, session)
  redis.call('ZREM', leases, id)
  redis.call('DEL', '{PREFIX}lease:' .. id)
  if session and session ~= '' then redis.call('SREM', '{PREFIX}session:' .. session, id) end
end
local function settle_lease(leases, egress, log, id, sent, completed, keep)
  -- A lease's download settled from its own record: ``sent`` bytes (false: those last
  -- reported), completed or aborted.
  local l = redis.call('HMGET', '{PREFIX}lease:' .. id, 'link', 'counted', 'reserved', 'day',
                       'sent', 'row', 'session', 'delivered')
  if not l[1] then
    redis.call('ZREM', leases, id)
    return 0
  end
  local reserved = tonumber(l[3])
  sent = math.min(sent or tonumber(l[5]), reserved)
  completed = completed and sent >= reserved
  local counted = l[2] == '1'
  local fate = session_ends(id, counted, l[7] or '', l[8] == '1', completed, false)
  settle('{PREFIX}link:' .. l[1], egress, sent - reserved, fate == 'given back', l[4])
  local row = cjson.decode(l[6])
  row['bytes_sent'] = sent
  row['outcome'] = completed and 'completed' or 'aborted'
  row['counted'] = fate == 'kept'
  log_row(log, log .. ':' .. l[1], cjson.encode(row), keep)
  forget_lease(leases, id, l[7])
  return 1
end
local function sweep(leases, egress, log, now, keep)
  -- Settles, as aborted, a few leases that lapsed before ``now``: their gateway died.
  local lapsed = redis.call('ZRANGEBYSCORE', leases, '-inf', '(' .. now, 'LIMIT', 0, 20)
  for _, id in ipairs(lapsed) do
    settle_lease(leases, egress, log, id, false, false, keep)
  end
end
local function counted_in_flight(leases, session, now)
  if session == '' then return false end
  if redis.call('EXISTS', '{PREFIX}recent:' .. session) == 1 then return true end
  for _, other in ipairs(redis.call('SMEMBERS', '{PREFIX}session:' .. session)) do
    local until_ = redis.call('ZSCORE', leases, other)
    if until_ and tonumber(until_) >= tonumber(now)
       and redis.call('HGET', '{PREFIX}lease:' .. other, 'counted') == '1' then
      return true
    end
  end
  return false
end
""".replace("{PREFIX}", PREFIX)

# KEYS: the leases, the bytes per day, the log. ARGV: the lease id, bytes sent, completed
# (0 or 1), how long a link's log is kept.
_SETTLE_LEASE = (
    _LOG_ROW
    + _LEASES
    + """
return settle_lease(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1',
                    ARGV[4])
"""
)

# KEYS: the link's record, the bytes per day, the leases, the log, the link's log, the lease.
# ARGV: now, nbytes, counted (0 or 1), byte cap, day, budget, lease id, until, cap (-1: none),
# the download's log row, settled (0 or 1: log the row now and take no lease), how long the
# link's log is kept, the download's session, piece (0 or 1).
# Returns nothing when the download began, else why not (models.Refusal).
_BEGIN = (
    _LOG_ROW
    + _LEASES
    + """
sweep(KEYS[3], KEYS[2], KEYS[4], ARGV[1], ARGV[12])
local nbytes = tonumber(ARGV[2])
local budget, cap = tonumber(ARGV[6]), tonumber(ARGV[9])
if budget >= 0 and tonumber(redis.call('HGET', KEYS[2], ARGV[5]) or '0') + nbytes > budget then
  return 'budget'
end
if cap >= 0 and redis.call('ZCOUNT', KEYS[3], ARGV[1], '+inf') >= cap then return 'busy' end
local f = redis.call('HMGET', KEYS[1], 'created_at', 'revoked_at', 'max_downloads',
                     'downloads', 'bytes_served')
if not f[1] or f[2] then return 'link' end
local counted, byte_cap = tonumber(ARGV[3]), tonumber(ARGV[4])
if counted == 1 and ARGV[14] == '1' and counted_in_flight(KEYS[3], ARGV[13], ARGV[1]) then
  counted = 0
end
if counted == 1 and f[3] and tonumber(f[4]) >= tonumber(f[3]) then return 'link' end
if byte_cap >= 0 and tonumber(f[5]) + nbytes > byte_cap then return 'link' end
local id = string.sub(KEYS[1], string.len('{PREFIX}link:') + 1)
redis.call('HINCRBY', KEYS[1], 'downloads', counted)
redis.call('HINCRBY', KEYS[1], 'bytes_served', ARGV[2])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[1])
if counted == 1 and f[3] and tonumber(f[4]) + 1 >= tonumber(f[3]) then index_link(id) end
if nbytes ~= 0 then redis.call('HINCRBY', KEYS[2], ARGV[5], ARGV[2]) end
if ARGV[11] == '1' then
  log_row(KEYS[4], KEYS[5], ARGV[10], ARGV[12])
else
  redis.call('HSET', KEYS[6], 'link', id,
             'counted', counted, 'reserved', ARGV[2], 'day', ARGV[5], 'sent', 0,
             'row', ARGV[10], 'session', ARGV[13], 'delivered', 0)
  redis.call('EXPIRE', KEYS[6], ARGV[12])
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[7])
  if ARGV[13] ~= '' then
    redis.call('SADD', '{PREFIX}session:' .. ARGV[13], ARGV[7])
    redis.call('EXPIRE', '{PREFIX}session:' .. ARGV[13], ARGV[12])
  end
end
return false
""".replace("{PREFIX}", PREFIX)
)

# KEYS: the link's record, the bytes per day, the leases, the log, the link's log, the lease.
# ARGV: extra bytes, uncount (0 or 1), day, lease id, the log row ('' for none), how long the
# link's log is kept, the row it replaces ('' for none), completed (0 or 1), final (0 or 1).
# A download with a lease counts as its lease says; the row replaced leaves the log's sums.
_END = (
    _LOG_ROW
    + _LEASES
    + UNROLL
    + """
local uncount, row = ARGV[2] == '1', ARGV[5]
local l = redis.call('HMGET', KEYS[6], 'counted', 'session', 'delivered')
if l[1] then
  local counted, completed = l[1] == '1', ARGV[8] == '1'
  local fate = session_ends(ARGV[4], counted, l[2] or '', l[3] == '1', completed,
                           ARGV[9] == '1')
  uncount = fate == 'given back'
  if row ~= '' then
    local decoded = cjson.decode(row)
    decoded['counted'] = fate == 'kept'
    row = cjson.encode(decoded)
  end
end
settle(KEYS[1], KEYS[2], tonumber(ARGV[1]), uncount, ARGV[3])
if ARGV[7] ~= '' then
  redis.call('LREM', KEYS[5], 1, ARGV[7])
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1000)) do
    if entry[2][2] == ARGV[7] then
      unroll(entry[1], ARGV[7], {})
      redis.call('XDEL', KEYS[4], entry[1])
      break
    end
  end
end
if row ~= '' then log_row(KEYS[4], KEYS[5], row, ARGV[6]) end
forget_lease(KEYS[3], ARGV[4], l[2])
return 1
"""
)

# KEYS: the record of a link or an API key. ARGV: when, and for a link its id.
_REVOKE = (
    INDEX
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
if ARGV[2] then index_link(ARGV[2]) end
return 1
"""
)

# KEYS: the issue record, the new link's record, the link index.
# ARGV: key prefix of link records, new link id, its created_at, cool-down, its expireat,
# how long the issue record is kept, then the new link's fields and values.
_ISSUE = (
    INDEX
    + """
local prev = redis.call('HMGET', KEYS[1], 'link', 'at')
if prev[1] and tonumber(prev[2]) + tonumber(ARGV[4]) > tonumber(ARGV[3])
   and redis.call('EXISTS', ARGV[1] .. prev[1]) == 1 then
  return prev[1]
end
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
redis.call('EXPIREAT', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
index_link(ARGV[2])
redis.call('HSET', KEYS[1], 'link', ARGV[2], 'at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return ARGV[2]
"""
)


class RedisStore(RedisLog, RedisQueries):
    """A Store in Redis, shared by any number of gateway processes and hosts."""

    def __init__(self, url: str, retention: int) -> None:
        self.retention = retention
        # Never a retry, whatever the URL's retry_on_* say (they only add errors to retry
        # on): a script sent again after its answer was lost runs twice, and counts twice.
        never = Retry(NoBackoff(), 0)
        self.redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True, retry=never)
        self._begin = self.redis.register_script(_BEGIN)
        self._end = self.redis.register_script(_END)
        self._revoke = self.redis.register_script(_REVOKE)
        self._issue = self.redis.register_script(_ISSUE)
        self._settle_lease = self.redis.register_script(_SETTLE_LEASE)
        self._index = self.redis.register_script(INDEX_LINKS)
        self._records = self.redis.register_script(_RECORDS)
        self._where = _where(url)
        try:
            migrate_redis(self.redis, self._where)
        except redis.ConnectionError:
            # Down as the process starts: it still starts, answers 503 until Redis is back,
            # and recovers by itself: downloads need no step (their scripts write what every
            # step makes), and what reads what a step makes brings the database up to date
            # first (RedisRollup._up_to_date).
            self._behind = True

    def add_link(self, link: Link) -> None:
        key = _link_key(link.id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=_mapping(link))  # type: ignore[arg-type]  # invariant key type
            pipe.expireat(key, link.expires_at + self.retention)
            pipe.zadd(LINKS, {link.id: link.created_at})
            self._index(args=[link.id], client=pipe)
            pipe.execute()

    def get_link(self, link_id: str) -> Link | None:
        return _link(cast(list[str | None], self.redis.hmget(_link_key(link_id), _LINK_ORDER)))

    def list_links(self) -> list[Link]:
        # The ids of records gone stay in the index until drop_ended forgets them all
        # through.
        links = self._link_records(cast(list[str], self.redis.zrange(LINKS, 0, -1)))
        return sorted(links, key=lambda link: (-link.created_at, link.id))

    def _link_records(self, ids: list[str], keep_gone: bool = False) -> list[Any]:
        """The records of ``ids`` still kept, in that order (with None for those gone if
        ``keep_gone``), read a few thousand a script (a pipeline's reply per record costs
        redis-py more than reading it)."""
        records: list[Link | None] = []
        for start in range(0, len(ids), LINK_CHUNK):
            chunk = ids[start : start + LINK_CHUNK]
            records += map(_link, self._records(args=[len(chunk), *chunk, *_LINK_ORDER]))
        return records if keep_gone else [link for link in records if link is not None]

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        self._revoke(keys=[_link_key(link_id)], args=[at, link_id])
        return self.get_link(link_id)

    def begin_downloads(self, starts: list[DownloadStart]) -> Each[Refusal | None]:
        if len(starts) < 2:
            return each(self.begin_download, starts)
        answers = run_each(self.redis, self._begin, [self._begin_call(start) for start in starts])
        return each(_refusal, answers)

    def begin_download(self, start: DownloadStart) -> Refusal | None:
        keys, args = self._begin_call(start)
        return _refusal(self._begin(keys=keys, args=args))

    def _begin_call(self, start: DownloadStart) -> Call:
        """The keys and arguments of _BEGIN for ``start``."""
        row, keep = self._log_args(start.event)
        args: list[str | int] = [
            start.now,
            start.nbytes,
            int(start.counted),
            _limit(start.byte_cap),
            start.day,
            _limit(start.budget),
            start.slot_id,
            start.until,
            _limit(start.cap),
            row,
            int(start.settled),
            keep,
            start.session,
            int(start.piece),
        ]
        return self._download_keys(start.link_id, start.slot_id), args

    def end_download(self, end: DownloadEnd) -> None:
        args: list[str | int] = [
            end.extra_bytes,
            int(end.uncount),
            end.day,
            end.slot_id,
            *self._log_args(end.event),
            _row(end.amends),
            int(end.completed),
            int(end.final),
        ]
        self._end(keys=self._download_keys(end.link_id, end.slot_id), args=args)

    def _download_keys(self, link_id: str, slot_id: str) -> list[str]:
        return [
            _link_key(link_id),
            EGRESS,
            SLOTS,
            EVENTS,
            _events_key(link_id),
            _lease_key(slot_id),
        ]

    def _log_args(self, event: DownloadEvent | None) -> list[str | int]:
        """The row (empty for none) and the link log's lifetime."""
        return [_row(event), self.retention]

    def renew_slot(self, slot_id: str, until: int, sent: int = 0) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(SLOTS, {slot_id: until}, xx=True)
            pipe.hset(_lease_key(slot_id), "sent", sent)
            pipe.expire(_lease_key(slot_id), self.retention)  # a lease ended meanwhile: gone later
            pipe.execute()

    def settle_lease(self, slot_id: str, sent: int, completed: bool) -> bool:
        args: list[str | int] = [slot_id, sent, int(completed), self.retention]
        return bool(self._settle_lease(keys=[SLOTS, EGRESS, EVENTS], args=args))

    def count_slots(self, now: int) -> int:
        return int(self.redis.zcount(SLOTS, now, "+inf"))

    def egress(self, first_day: int, last_day: int) -> dict[int, int]:
        days = list(range(first_day, last_day + 1))
        if not days:
            return {}
        values = cast(list[str | None], self.redis.hmget(EGRESS, [str(d) for d in days]))
        return {day: int(v) for day, v in zip(days, values, strict=True) if v and int(v) > 0}

    def add_event(self, event: DownloadEvent) -> None:
        with self.redis.pipeline(transaction=False) as pipe:
            self._queue_event(pipe, event)
            pipe.execute()

    def note_event(self, event: DownloadEvent) -> None:
        self.add_event(event)  # one round trip: nothing to gain by holding it

    def _queue_event(self, pipe: Any, event: DownloadEvent) -> None:
        data = _row(event)
        per_link = _events_key(event.link_id)
        pipe.xadd(EVENTS, {"e": data})
        pipe.lpush(per_link, data)
        pipe.expire(per_link, self.retention)

    def list_events(
        self, link_id: str | None = None, limit: int | None = None
    ) -> list[DownloadEvent]:
        if link_id is not None:
            rows = self.redis.lrange(_events_key(link_id), 0, (limit or 0) - 1)
        else:
            entries = cast(
                list[tuple[str, dict[str, str]]],
                self.redis.xrevrange(EVENTS, count=limit),
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
        keys = [issue_key, _link_key(link.id), LINKS]
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

    def backup(self, target: Path) -> None:
        raise BackupError(REDIS_ADVICE)

    def flush(self, wait: float | None = None) -> None:
        return  # every download is written as it begins

    def close(self) -> None:
        self.redis.close()

    def ping(self) -> None:
        self.redis.ping()

    def seen_once(self, key: str, now: int, ttl: int) -> bool:
        return bool(self.redis.set(f"{PREFIX}once:{key}", now, nx=True, ex=max(1, ttl)))


def _where(url: str) -> str:
    """The URL without its password, to name the store in a message."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _link_key(link_id: str) -> str:
    return f"{PREFIX}link:{link_id}"


def _lease_key(slot_id: str) -> str:
    return f"{PREFIX}lease:{slot_id}"


def _row(event: DownloadEvent | None) -> str:
    """A log row as kept in Redis; empty for none."""
    if event is None:
        return ""
    # Not asdict(): it deep-copies every field, and this runs once per download.
    return json.dumps({name: getattr(event, name) for name in _EVENT_FIELDS})


def _events_key(link_id: str) -> str:
    return f"{EVENTS}:{link_id}"


def _refusal(answer: Any) -> Refusal | None:
    """What _BEGIN's answer says: let in (None) or the refusal; a reply error, raised."""
    if isinstance(answer, BaseException):
        raise answer
    return None if answer is None else Refusal(answer)


def _limit(limit: int | None) -> int:
    """A limit as a script's argument: -1 for none."""
    return -1 if limit is None else limit


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


def _link(values: list[str | None]) -> Link | None:
    """A link from its record's fields in _LINK_ORDER (None: the record is gone)."""
    if values[0] is None:
        return None
    read: list[Any] = [
        default if value is None else convert(value)
        for (convert, default), value in zip(_LINK_READ, values, strict=True)
    ]
    return Link(*read)


def _event(data: dict[str, Any]) -> DownloadEvent:
    return DownloadEvent(**{**data, "outcome": Outcome(data["outcome"])})
