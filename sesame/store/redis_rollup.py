"""Sums of the Redis log per day, kept beside it so that the Activity page's totals and
charts over a long period read a few entries a day instead of every row: Redis's side of
what ``sqlite_rollup.py`` does for SQLite, with the same rules.

``roll_up`` adds stream entries to the sums a batch at a time, behind a cursor (a stream
id) per day boundary kept (``sesame:rollups``: UTC and the zones the pages asked for); the
download path never adds to them. An entry is counted by an offset's sums once its id is
at or below that offset's cursor. An entry that leaves the stream after it was counted (a
row amended as its download ended, a link's rows forgotten by retention, a row trimmed by
age) is taken out of the sums by the same script that removes it (``UNROLL``), so the
stream and its sums never disagree; for that reason the log is trimmed here, exactly,
never by XADD's approximate MINID.

The keys, for an offset O and a day D (days since 1970-01-01 at O):
- ``sesame:sums:O:D``, a hash: for each outcome and file, ``r``, ``c`` and ``b`` + outcome +
  US + file: the rows, counted downloads and bytes sent;
- ``sesame:sumsf:O:D``, the same by file alone (and ``a`` and ``p``: the aborted rows and
  the previews), for a query of every outcome;
- ``sesame:sumdays:O``, a sorted set of the days that have sums;
- ``sesame:ips:D:`` + outcome + US + file (UTC days only), a sorted set of the client
  addresses of those rows, each scored by its rows: a period's distinct addresses are the
  size of the union of its days' sets and of its own rows' addresses;
- ``sesame:ipdays:`` + address, a hash: its rows per UTC day; and ``sesame:iplast``, each
  address scored by the last of those days: a period with no end and no files or
  outcomes counts the addresses of its whole days in one ZCOUNT;
- ``sesame:late``, the ids of counted entries written more than an hour from their row's
  time (a download that lasted hours, a clock far off), scored by that time: a part-day
  is read from the stream by id, an hour either side, and from here;
- ``sesame:rollup-holds``, the queries under way: no roll-up runs meanwhile;
- ``sesame:files``, each counted link's file, so that its rows keep their file in the sums
  and in the pages after its record expires (until retention forgets the link).

Outcomes are words without US (the unit separator, byte 31), so a field splits at its
first US whatever a file is called.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis

from sesame.activity import UNKNOWN_FILE, LogFilter
from sesame.store.migrations import migrate_redis
from sesame.store.redis_keys import EVENTS, PREFIX
from sesame.store.split import making_way

ROLLUPS = PREFIX + "rollups"  # offset -> cursor
LATE = PREFIX + "late"
FILES = PREFIX + "files"
IPLAST = PREFIX + "iplast"  # client addresses, scored by the last UTC day they have rows
HOLDS = PREFIX + "rollup-holds"  # queries under way, scored by when their hold lapses
HOLD_S = 60  # a query that died holds the roll-ups no longer than this
SKEW_MS = 3_600_000  # how far an entry's id may be from its row's time and not be late

# Lua, for every script that adds entries to the sums or takes them out.
UNROLL = r"""
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function id_le(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  if am ~= bm then return am < bm end
  return as <= bs
end
local function file_of(link_id, files)
  local known = files[link_id]
  if known then return known end
  known = redis.call('HGET', '{FILES}', link_id)
  if not known then
    known = redis.call('HGET', '{PREFIX}link:' .. link_id, 'file')
    if known then redis.call('HSET', '{FILES}', link_id, known) else known = '{UNKNOWN}' end
  end
  files[link_id] = known
  return known
end
-- An address's rows per UTC day, and the last day it has any (what a period without an
-- end and without files or outcomes counts its addresses by).
local function seen(ip, day, sign)
  local days = '{PREFIX}ipdays:' .. ip
  if sign > 0 then
    redis.call('HINCRBY', days, day, 1)
    redis.call('ZADD', '{IPLAST}', 'GT', day, ip)
    return
  end
  if redis.call('HINCRBY', days, day, -1) > 0 then return end
  redis.call('HDEL', days, day)
  if tonumber(redis.call('ZSCORE', '{IPLAST}', ip) or '0') ~= day then return end
  local last = nil
  for _, other in ipairs(redis.call('HKEYS', days)) do
    other = tonumber(other)
    if not last or other > last then last = other end
  end
  if last then redis.call('ZADD', '{IPLAST}', last, ip) else redis.call('ZREM', '{IPLAST}', ip) end
end
local function sum_row(id, row, file, offset, sign)
  local day = math.floor((row.at + offset) / 86400)
  local key = '{PREFIX}sums:' .. offset .. ':' .. day
  local combo = row.outcome .. '\31' .. file
  -- Never an increment of 0: Lua's -1 * 0 is -0, which Redis refuses as an integer.
  local sent = sign * row.bytes_sent
  local left = redis.call('HINCRBY', key, 'r' .. combo, sign)
  if left <= 0 then
    redis.call('HDEL', key, 'r' .. combo, 'c' .. combo, 'b' .. combo)
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', '{PREFIX}sumdays:' .. offset, day)
    end
  else
    if row.counted == true then redis.call('HINCRBY', key, 'c' .. combo, sign) end
    if sent ~= 0 then redis.call('HINCRBY', key, 'b' .. combo, sent) end
    if sign > 0 and left == 1 then
      redis.call('ZADD', '{PREFIX}sumdays:' .. offset, day, day)
    end
  end
  local by_file = '{PREFIX}sumsf:' .. offset .. ':' .. day
  if redis.call('HINCRBY', by_file, 'r' .. file, sign) <= 0 then
    redis.call('HDEL', by_file, 'r' .. file, 'c' .. file, 'b' .. file, 'a' .. file, 'p' .. file)
  else
    if row.counted == true then redis.call('HINCRBY', by_file, 'c' .. file, sign) end
    if sent ~= 0 then redis.call('HINCRBY', by_file, 'b' .. file, sent) end
    if row.outcome == 'aborted' then redis.call('HINCRBY', by_file, 'a' .. file, sign) end
    if row.outcome == 'preview' then redis.call('HINCRBY', by_file, 'p' .. file, sign) end
  end
  if offset == 0 then
    local ip = row.client_ip
    if type(ip) == 'string' and ip ~= '' then
      local set = '{PREFIX}ips:' .. day .. ':' .. combo
      if tonumber(redis.call('ZINCRBY', set, sign, ip)) <= 0 then
        redis.call('ZREM', set, ip)
      end
      seen(ip, day, sign)
    end
  end
  if sign > 0 then
    if math.abs(id_parts(id) - row.at * 1000) > {SKEW} then
      redis.call('ZADD', '{LATE}', row.at, id)
    end
  end
end
-- Takes the entry ``id`` (its data ``data``) out of the sums of each offset that counts it;
-- the caller removes it from the stream.
local function unroll(id, data, files)
  local row = nil
  local cursors = redis.call('HGETALL', '{ROLLUPS}')
  for i = 1, #cursors, 2 do
    if id_le(id, cursors[i + 1]) then
      row = row or cjson.decode(data)
      sum_row(id, row, file_of(row.link_id, files), tonumber(cursors[i]), -1)
    end
  end
  if row then redis.call('ZREM', '{LATE}', id) end
end
"""

# KEYS: the stream. ARGV: how many entries per offset. Returns the most added to one (0
# while a query holds the roll-ups: see RedisRollup._rollups_held).
_ROLL = r"""
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', '{HOLDS}', '-inf', '(' .. now[1])
if redis.call('ZCARD', '{HOLDS}') > 0 then return 0 end
redis.call('HSETNX', '{ROLLUPS}', '0', '0-0')
local batch, rolled, files = tonumber(ARGV[1]), 0, {}
local cursors = redis.call('HGETALL', '{ROLLUPS}')
for i = 1, #cursors, 2 do
  local offset = tonumber(cursors[i])
  local got = redis.call('XRANGE', KEYS[1], '(' .. cursors[i + 1], '+', 'COUNT', batch)
  for _, entry in ipairs(got) do
    local row = cjson.decode(entry[2][2])
    sum_row(entry[1], row, file_of(row.link_id, files), offset, 1)
  end
  if #got > 0 then
    redis.call('HSET', '{ROLLUPS}', cursors[i], got[#got][1])
    rolled = math.max(rolled, #got)
  end
end
return rolled
"""

# KEYS: the stream. ARGV: the id entries are trimmed below, how many at most.
# Returns how many were trimmed.
_TRIM = r"""
local got = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1], 'COUNT', tonumber(ARGV[2]))
local files = {}
for _, entry in ipairs(got) do
  unroll(entry[1], entry[2][2], files)
  redis.call('XDEL', KEYS[1], entry[1])
end
return #got
"""

# KEYS: the stream. ARGV: where to start (an id, '(' for after it), how many entries to
# read, the link ids whose rows go (a JSON list). Returns where to go on from ('' at the end).
_DROP_ROWS = r"""
local gone = {}
for _, id in ipairs(cjson.decode(ARGV[3])) do gone[id] = true end
local got = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local files = {}
for _, entry in ipairs(got) do
  local data = entry[2][2]
  if gone[cjson.decode(data).link_id] then
    unroll(entry[1], data, files)
    redis.call('XDEL', KEYS[1], entry[1])
  end
end
if #got < tonumber(ARGV[2]) then return '' end
return '(' .. got[#got][1]
"""

# The sums of whole days at an offset, a chunk of days per trip, filtered by files and
# outcomes; with a key to union the days' client addresses into (UTC only, '' for none).
# ARGV: offset, first day, last day, files, outcomes (JSON lists, empty for any), how many
# days, the union's key. Returns, like the log scan's tally (redis_queries._SCAN): the day
# to go on from ('' at the end), {downloads, aborted, previews, bytes, rows}, no addresses,
# (day, file, downloads, bytes) flattened, nothing to judge.
_SUMS = r"""
local offset, first, last = ARGV[1], ARGV[2], ARGV[3]
local files, outcomes = {}, {}
for _, f in ipairs(cjson.decode(ARGV[4])) do files[f] = true end
for _, o in ipairs(cjson.decode(ARGV[5])) do outcomes[o] = true end
local any_file, any_outcome = next(files) == nil, next(outcomes) == nil
local count, union = tonumber(ARGV[6]), ARGV[7]
local days = redis.call('ZRANGEBYSCORE', '{PREFIX}sumdays:' .. offset, first, last,
                        'LIMIT', 0, count)
local totals, series, sets = {0, 0, 0, 0, 0}, {}, {}
local function add(day, file, s)
  totals[1] = totals[1] + s[2]
  totals[2] = totals[2] + s[4]
  totals[3] = totals[3] + s[5]
  totals[4] = totals[4] + s[3]
  totals[5] = totals[5] + s[1]
  series[#series + 1] = day
  series[#series + 1] = file
  series[#series + 1] = s[2]
  series[#series + 1] = s[3]
end
local slots = {r = 1, c = 2, b = 3, a = 4, p = 5}
for _, day in ipairs(days) do
  local per_file = {}
  if any_outcome and union == '' then
    -- Every outcome: the day's sums by file are enough.
    local flat = redis.call('HGETALL', '{PREFIX}sumsf:' .. offset .. ':' .. day)
    for i = 1, #flat, 2 do
      local file = string.sub(flat[i], 2)
      if any_file or files[file] then
        local s = per_file[file]
        if not s then s = {0, 0, 0, 0, 0}; per_file[file] = s end
        s[slots[string.sub(flat[i], 1, 1)]] = tonumber(flat[i + 1])
      end
    end
  else
    local flat = redis.call('HGETALL', '{PREFIX}sums:' .. offset .. ':' .. day)
    local combos = {}
    for i = 1, #flat, 2 do
      local field = flat[i]
      local cut = string.find(field, '\31', 2, true)
      local outcome, file = string.sub(field, 2, cut - 1), string.sub(field, cut + 1)
      if (any_outcome or outcomes[outcome]) and (any_file or files[file]) then
        local combo = string.sub(field, 2)
        local c = combos[combo]
        if not c then c = {0, 0, 0, outcome, file}; combos[combo] = c end
        c[slots[string.sub(field, 1, 1)]] = tonumber(flat[i + 1])
      end
    end
    for combo, c in pairs(combos) do
      if c[1] > 0 then
        local s = per_file[c[5]]
        if not s then s = {0, 0, 0, 0, 0}; per_file[c[5]] = s end
        s[1] = s[1] + c[1]
        s[2] = s[2] + c[2]
        s[3] = s[3] + c[3]
        if c[4] == 'aborted' then s[4] = s[4] + c[1] end
        if c[4] == 'preview' then s[5] = s[5] + c[1] end
        if union ~= '' then sets[#sets + 1] = '{PREFIX}ips:' .. day .. ':' .. combo end
      end
    end
  end
  for file, s in pairs(per_file) do
    if s[1] > 0 then add(day, file, s) end
  end
end
for i = 1, #sets, 4000 do
  redis.call('ZUNIONSTORE', union, math.min(4000, #sets - i + 1) + 1, union,
             unpack(sets, i, math.min(i + 3999, #sets)))
end
if union ~= '' then redis.call('EXPIRE', union, 600) end
local after = ''
if #days == count then after = tostring(tonumber(days[#days]) + 1) end
return {after, totals, {}, series, {}}
"""


def _lua(source: str) -> str:
    for name, value in (
        ("{PREFIX}", PREFIX),
        ("{ROLLUPS}", ROLLUPS),
        ("{LATE}", LATE),
        ("{FILES}", FILES),
        ("{HOLDS}", HOLDS),
        ("{IPLAST}", IPLAST),
        ("{SKEW}", str(SKEW_MS)),
        ("{UNKNOWN}", UNKNOWN_FILE),
    ):
        source = source.replace(name, value)
    return source


UNROLL = _lua(UNROLL)
ROLL, TRIM, DROP_ROWS = (_lua(UNROLL + s) for s in (_ROLL, _TRIM, _DROP_ROWS))
SUMS = _lua(_SUMS)
DAYS_PER_TRIP = 16  # of the sums: a few milliseconds of the server's time per trip
TRIP_ROWS = 250  # rows rolled up per trip: as many milliseconds


def stream_id(ms: float, high: bool = False) -> str:
    """The stream id at ``ms`` milliseconds: the first of that millisecond, or (``high``)
    the last."""
    return f"{math.ceil(ms) if high else math.floor(ms)}-{(1 << 64) - 1 if high else 0}"


def id_key(entry: str) -> tuple[int, int]:
    """A stream id as a pair that sorts as the stream does."""
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


class RedisRollup:
    """The sums' side of RedisStore; needs its ``redis``."""

    redis: redis.Redis
    _where = ""  # the database, as SchemaTooNew names it
    _behind = False  # not brought up to date as the store opened: Redis was down

    def _up_to_date(self) -> None:
        """Bring the database up to date if it could not be as the store opened; called by
        what reads what the steps make (the sums, the links' index) and by the sweeps."""
        if self._behind:
            migrate_redis(self.redis, self._where)
            self._behind = False

    def _script(self, name: str, source: str) -> Any:
        """The script ``source``, registered once per store as ``name``."""
        scripts: dict[str, Any] = self.__dict__.setdefault("_scripts", {})
        if name not in scripts:
            scripts[name] = self.redis.register_script(source)
        return scripts[name]

    def roll_up(self, batch: int) -> int:
        self._up_to_date()
        # At most TRIP_ROWS a script: each row is a dozen commands on the server, which
        # serves no download meanwhile.
        roll = self._script("roll", ROLL)
        return int(roll(keys=[EVENTS], args=[min(batch, TRIP_ROWS)]))

    def _trim(self, below_ms: int, batch: int) -> None:
        """Entries written before ``below_ms``, out of the stream and its sums."""
        trim = self._script("trim", TRIM)
        while trim(keys=[EVENTS], args=[f"{below_ms}-0", batch]):
            pass

    def _drop_link_rows(self, link_ids: list[str], batch: int) -> None:
        """The stream's entries of ``link_ids``, out of it and its sums: one pass over the
        stream, ``batch`` entries a trip (stream ids are not by link)."""
        drop, start = self._script("drop", DROP_ROWS), "-"
        while start:
            start = drop(keys=[EVENTS], args=[start, batch, json.dumps(link_ids)])

    @contextmanager
    def _rollups_held(self) -> Iterator[None]:
        """No roll-up moves a cursor meanwhile (in any process): a query reads the sums
        and the rows past the cursor in several trips, and a batch rolled up between
        them would be counted twice."""
        token = uuid.uuid4().hex
        now, _ = self.redis.time()  # the clock _ROLL lapses holds by
        self.redis.zadd(HOLDS, {token: now + HOLD_S})
        try:
            yield
        finally:
            self.redis.zrem(HOLDS, token)

    def _cursor(self, offset: int) -> str:
        """The cursor of ``offset``'s sums; an offset not kept yet is kept from now on
        (roll_up builds its sums), the oldest other than UTC making way for it."""
        cursor = cast(str | None, self.redis.hget(ROLLUPS, str(offset)))
        if cursor is not None:
            return cursor
        kept = [int(o) for o in cast(list[str], self.redis.hkeys(ROLLUPS)) if o != "0"]
        for old in making_way(kept):
            self._forget_offset(old)
        self.redis.hsetnx(ROLLUPS, "0", "0-0")
        self.redis.hsetnx(ROLLUPS, str(offset), "0-0")
        return cast(str, self.redis.hget(ROLLUPS, str(offset)))

    def _forget_offset(self, offset: int) -> None:
        self.redis.hdel(ROLLUPS, str(offset))  # no roll-up adds to it from here on
        days = cast(list[str], self.redis.zrange(f"{PREFIX}sumdays:{offset}", 0, -1))
        with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.delete(f"{PREFIX}sums:{offset}:{day}", f"{PREFIX}sumsf:{offset}:{day}")
            pipe.delete(f"{PREFIX}sumdays:{offset}")
            pipe.execute()

    def _late(self, low: float, high: float, cursor: str) -> list[str]:
        """The data of the counted entries (at or below ``cursor``) written late whose
        rows' time is in [low, high)."""
        ids = cast(list[str], self.redis.zrangebyscore(LATE, low, f"({high}"))
        ids = [entry for entry in ids if id_key(entry) <= id_key(cursor)]
        with self.redis.pipeline(transaction=False) as pipe:
            for entry in ids:
                pipe.xrange(EVENTS, entry, entry)
            found: list[list[tuple[str, dict[str, str]]]] = pipe.execute()
        return [entries[0][1]["e"] for entries in found if entries]

    def _summed_days(
        self, query: LogFilter, offset: int, first: int, last: int, union: str
    ) -> Iterator[list[Any]]:
        """The script's replies over the whole days ``first`` to ``last``."""
        sums = self._script("sums", SUMS)
        wanted = [json.dumps(list(query.files)), json.dumps(list(query.outcomes))]
        start: str = str(first)
        while start:
            reply = cast(
                list[Any],
                sums(args=[offset, start, last, *wanted, DAYS_PER_TRIP, union]),
            )
            yield reply
            start = reply[0]
