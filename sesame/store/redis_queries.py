"""What the Links and Activity pages ask of the Redis store, answered by the server: Lua
scripts read the log a chunk at a time and send back only the rows a page shows, or the sums
it shows. Each trip reads a bounded chunk, so a download waits behind one at most about
15 ms (2,000 entries, on the benchmark's slow machine). Totals and series add the per-day
sums of redis_rollup to the rows those do not count; a text or one link's log is read row by
row (see bench/RESULTS.md). The links come from their index (redis_status)"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any, cast

import redis

from sesame.activity import UNKNOWN_FILE, DayFile, LogFilter, LogRow, Totals, iso_day
from sesame.models import DownloadEvent, Link, LinkStatus, Outcome
from sesame.store.casefold import FOLDS, holds, needs_casefold
from sesame.store.redis_keys import EVENTS, LINKS, PREFIX
from sesame.store.redis_rollup import (
    FILES,
    IPLAST,
    SKEW_MS,
    RedisRollup,
    id_key,
    stream_id,
)
from sesame.store.redis_status import indexed_files, of_files, status_counts, with_status
from sesame.store.split import Split

LOG_CHUNK = 2000  # log entries per trip (see the docstring)
LINK_CHUNK = 2000  # link records per trip

# One chunk of the log (the stream, or one link's list), judged by a filter on the server.
# The text is matched here only when the answer is certain (an ASCII needle found in a
# field lowered, or no field with a character of casefold.FOLDS, or for any other needle no byte
# beyond ASCII: Python's casefold is then Lua's lower as far as the needle can tell); any
# other row goes back marked "maybe", for Python to judge with str.casefold.
#
# KEYS: the log. ARGV: mode ('rows': return the rows chosen; 'tally': add them up;
# 'given': add up the rows of ARGV[13], already judged), where to start (a stream id, with
# '(' for after it, or a list index), how many entries to read, newest first (0 or 1),
# since and until ('' for none), the files and outcomes (JSON lists, empty for any), the
# needle (casefolded, '' for none), the days' seconds from UTC, whether the log is a list
# (0 or 1), the far end of the stream's range, the rows given (a JSON list), whether the
# needle is matched exactly by lower (0 or 1: see casefold.needs_casefold).
# Returns where to go on from ('' at the end), then for 'rows' (json, file, recipient,
# maybe) flattened, else {downloads, aborted, previews, bytes, rows}, the client
# addresses, (day, file, downloads, bytes) flattened, and the maybe rows as for 'rows'.
_SCAN = (
    r"""
local decode, floor, call = cjson.decode, math.floor, redis.call
local find, lower = string.find, string.lower
local mode, start, count, newest = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local since, until_ = tonumber(ARGV[5]), tonumber(ARGV[6])
local needle, offset, is_list = ARGV[9], tonumber(ARGV[10]), ARGV[11] == '1'
local files, outcomes = {}, {}
for _, f in ipairs(cjson.decode(ARGV[7])) do files[f] = true end
for _, o in ipairs(cjson.decode(ARGV[8])) do outcomes[o] = true end
local any_file, any_outcome = next(files) == nil, next(outcomes) == nil
local ascii_needle = not string.find(needle, '[\128-\255]')
local exact = ARGV[14] == '1'

local entries, after = {}, ''
if mode == 'given' then
  entries = cjson.decode(ARGV[13])
elseif is_list then
  local first = tonumber(start)
  if newest then
    entries = redis.call('LRANGE', KEYS[1], first, first + count - 1)
  else
    local got = redis.call('LRANGE', KEYS[1], -(first + count), -(first + 1))
    for i = #got, 1, -1 do entries[#entries + 1] = got[i] end
  end
  if #entries == count then after = tostring(first + count) end
else
  local got
  if newest then
    got = redis.call('XREVRANGE', KEYS[1], start, ARGV[12], 'COUNT', count)
  else
    got = redis.call('XRANGE', KEYS[1], start, ARGV[12], 'COUNT', count)
  end
  for i, entry in ipairs(got) do entries[i] = entry[2][2] end
  if #got == count then after = '(' .. got[#got][1] end
end

local function text(value)
  if value == nil or value == false or value == cjson.null then return '' end
  return tostring(value)
end
local FOLDS = cjson.decode('{FOLDS}')
local FOLD_LEADS = '[{LEADS}]'  -- their first bytes: a field with none holds none of them
-- The needle in ``fields``: true, 'maybe' (for Python's casefold to say), or false.
-- With ``exact`` (casefold.needs_casefold said no), lower alone finds what casefold finds.
local function judge(fields)
  local wide = false
  for _, field in ipairs(fields) do
    if (ascii_needle or exact) and find(lower(field), needle, 1, true) then return true end
    if exact or wide then
    elseif ascii_needle then
      if find(field, FOLD_LEADS) then
        for _, char in ipairs(FOLDS) do
          if find(field, char, 1, true) then wide = true; break end
        end
      end
    elseif find(field, '[\128-\255]') then
      wide = true
    end
  end
  return wide and 'maybe' or false
end

-- Each link's file, recipient and the needle's verdict on its own fields (id, recipient).
local links = {}
local function link_of(id)
  local known = links[id]
  if not known then
    local f = call('HMGET', '{PREFIX}link:' .. id, 'file', 'recipient')
    if f[1] then known = {f[1], f[2] or ''}
    else known = {redis.call('HGET', '{FILES}', id) or '{UNKNOWN}', ''} end
    if needle ~= '' then known[3] = judge({known[2], id}) end
    links[id] = known
  end
  return known
end
-- A row's own fields (an address, a user agent) repeat from row to row: judged once a trip.
local verdicts = {}
local function judged(field)
  local verdict = verdicts[field]
  if verdict == nil then
    verdict = judge({field})
    verdicts[field] = verdict
  end
  return verdict
end
local function matches(row, link)
  if link[3] == true then return true end
  local ip, agent = judged(text(row.client_ip)), judged(text(row.user_agent))
  if ip == true or agent == true then return true end
  return (ip or agent or link[3]) and 'maybe'
end

local chosen, maybe = {}, {}
local totals, clients, days = {0, 0, 0, 0, 0}, {}, {}
local function add(row, file)
  local counted = row.counted == true and 1 or 0
  totals[1] = totals[1] + counted
  totals[2] = totals[2] + (row.outcome == 'aborted' and 1 or 0)
  totals[3] = totals[3] + (row.outcome == 'preview' and 1 or 0)
  totals[4] = totals[4] + row.bytes_sent
  totals[5] = totals[5] + 1
  local ip = row.client_ip
  if type(ip) == 'string' and ip ~= '' then clients[ip] = true end
  local day = floor((row.at + offset) / 86400)
  local of_day = days[day]
  if not of_day then of_day = {}; days[day] = of_day end
  local sums = of_day[file]
  if not sums then sums = {0, 0}; of_day[file] = sums end
  sums[1] = sums[1] + counted
  sums[2] = sums[2] + row.bytes_sent
end
local function keep(into, data, link, verdict)
  into[#into + 1] = data
  into[#into + 1] = link[1]
  into[#into + 1] = link[2]
  into[#into + 1] = verdict == 'maybe' and 1 or 0
end

-- A row whose text holds none of the outcomes wanted is passed over before it is decoded:
-- JSON writes the key and its value so (with or without the space, as Python's json or
-- cjson did), and a quote inside a value is escaped, so a value cannot hold it.
local marks = {}
for o in pairs(outcomes) do
  marks[#marks + 1] = '"outcome": "' .. o .. '"'
  marks[#marks + 1] = '"outcome":"' .. o .. '"'
end
local function wanted(data)
  if any_outcome or mode == 'given' then return true end
  for _, mark in ipairs(marks) do
    if find(data, mark, 1, true) then return true end
  end
  return false
end

for _, data in ipairs(entries) do
  local row = wanted(data) and decode(data)
  if row and (not since or row.at >= since) and (not until_ or row.at < until_)
     and (any_outcome or outcomes[row.outcome]) then
    local link = link_of(row.link_id)
    if any_file or files[link[1]] then
      local verdict = true
      if needle ~= '' and mode ~= 'given' then verdict = matches(row, link) end
      if mode == 'rows' then
        if verdict then keep(chosen, data, link, verdict) end
      elseif verdict == true then
        add(row, link[1])
      elseif verdict then
        keep(maybe, data, link, verdict)
      end
    end
  end
end
if mode == 'rows' then return {after, chosen} end
local addresses, series = {}, {}
for ip in pairs(clients) do addresses[#addresses + 1] = ip end
for day, of_day in pairs(days) do
  for file, sums in pairs(of_day) do
    series[#series + 1] = day
    series[#series + 1] = file
    series[#series + 1] = sums[1]
    series[#series + 1] = sums[2]
  end
end
return {after, totals, addresses, series, maybe}
""".replace("{PREFIX}", PREFIX)
    .replace("{UNKNOWN}", UNKNOWN_FILE)
    .replace("{FILES}", FILES)
    .replace("{FOLDS}", json.dumps(FOLDS, ensure_ascii=False))
    .replace("{LEADS}", "".join(sorted({f"\\{char.encode()[0]}" for char in FOLDS})))
)


class RedisQueries(RedisRollup):
    """The pages' queries of RedisStore; needs its ``redis`` and ``_link_records``."""

    redis: redis.Redis
    retention: int

    def _link_records(self, ids: list[str], keep_gone: bool = False) -> list[Any]:
        raise NotImplementedError

    # -- the log ------------------------------------------------------------------------

    def log_page(self, query: LogFilter, limit: int, offset: int = 0) -> list[LogRow]:
        return list(islice(self._matching(query, newest_first=True), offset, offset + limit))

    def log_rows(self, query: LogFilter) -> Iterator[LogRow]:
        return self._matching(query, newest_first=False)

    def log_totals(self, query: LogFilter) -> Totals:
        self._up_to_date()
        return self._tally(query, 0, clients=True).totals()

    def log_series(self, query: LogFilter, utc_offset: int = 0) -> list[DayFile]:
        self._up_to_date()
        return self._tally(query, utc_offset, clients=False).series()

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

    def _matching(self, query: LogFilter, newest_first: bool) -> Iterator[LogRow]:
        for reply in self._scans(query, "rows", newest_first, 0):
            for _, row, maybe in _rows(reply[1]):
                if not maybe or selected(query, row):
                    yield row

    def _tally(self, query: LogFilter, utc_offset: int, clients: bool) -> _Tally:
        """The sums of ``query`` at ``utc_offset``'s days (with its distinct addresses if
        ``clients``, at UTC's): those of the last call again if they were for the same and
        the log has not changed since (its length and last entry's id, which an amend, a
        trim or a deletion changes too): the page asks for the totals, then the series."""
        log = self.redis.xinfo_stream(EVENTS) if self.redis.exists(EVENTS) else {}
        state = (query, utc_offset, log.get("length"), log.get("last-generated-id"), _moment())
        last: tuple[tuple[Any, ...], _Tally] | None = self.__dict__.get("_last_tally")
        if query.link_id is None and last is not None and last[0] == state:
            if last[1].counted_clients or not clients:
                return last[1]
        if query.needle or query.link_id is not None:
            tally = self._scanned(query, utc_offset)  # a text or a link: rows only
        else:
            tally = self._summed(query, 0 if clients else utc_offset, clients)
        self.__dict__["_last_tally"] = (state, tally)
        return tally

    def _scanned(self, query: LogFilter, utc_offset: int) -> _Tally:
        """The sums of every row ``query`` covers, read one by one."""
        tally = _Tally()
        self._scan_into(tally, query, utc_offset, *self._range(query))
        tally.counted_clients = True
        return tally

    def _summed(self, query: LogFilter, offset: int, clients: bool) -> _Tally:
        """The sums of ``query`` from those of its whole days and the rows they do not
        count, read one by one (see redis_rollup), with roll-ups held meanwhile so that
        no row is counted twice or missed."""
        with self._rollups_held():
            return self._split_tally(Split.of(query, offset, self._cursor(offset)), query, clients)

    def _split_tally(self, split: Split, query: LogFilter, clients: bool) -> _Tally:
        cursor = str(split.cursor)
        tally = _Tally()
        # The whole days' addresses: by their last day if the period has no end and the
        # query no files or outcomes, else by a union of the days' sets.
        by_last = clients and not (query.files or query.outcomes) and query.until is None
        union = f"{PREFIX}union:{uuid.uuid4().hex}" if clients and not by_last else ""
        try:
            days = self._summed_days(query, split.offset, split.first_day, split.last_day, union)
            for reply in days:
                tally.add(reply)
            # The rows past the cursor (from an hour before the period at the earliest).
            first = self._range(query)[0]
            if first == "-" or id_key(first) <= id_key(cursor):
                first = "(" + cursor
            self._scan_into(tally, query, split.offset, first, "+")
            # The part-days the sums leave, from the stream an hour either side and from
            # the entries written later than that.
            for low, high in split.parts():
                part = replace(query, since=low, until=high)
                start = stream_id(low * 1000 - SKEW_MS)
                end = min(stream_id(high * 1000 + SKEW_MS, high=True), cursor, key=id_key)
                if id_key(start) <= id_key(end):
                    self._scan_into(tally, part, split.offset, start, end)
                self._given_into(tally, part, split.offset, self._late(low, high, cursor))
            if by_last:
                tally.count_clients_with(self.redis, IPLAST, split.first_day)
            elif clients:
                tally.count_clients_with(self.redis, union, float("-inf"))
        finally:
            if union:
                self.redis.delete(union)
        return tally

    def _scan_into(
        self, tally: _Tally, query: LogFilter, utc_offset: int, start: str, end: str
    ) -> None:
        """Adds to ``tally`` the rows of ``query`` between stream ids ``start`` and
        ``end`` (or all of one link's list), the text judged in Python where the script
        could not."""
        for reply in self._scans(query, "tally", False, utc_offset, start, end):
            tally.add(reply)
            chosen = [data for data, row, _ in _rows(reply[4]) if selected(query, row)]
            self._given_into(tally, query, utc_offset, chosen)

    def _given_into(
        self, tally: _Tally, query: LogFilter, utc_offset: int, rows: list[str]
    ) -> None:
        """Adds to ``tally`` those of ``rows`` (as kept) that ``query``'s period, files
        and outcomes select; its text is taken as matched."""
        for n in range(0, len(rows), LOG_CHUNK):
            args = _args(query, "given", "", False, utc_offset, "")
            args[12] = json.dumps(rows[n : n + LOG_CHUNK])
            tally.add(self._script("scan", _SCAN)(keys=[EVENTS], args=args))

    def _range(self, query: LogFilter) -> tuple[str, str]:
        """Where the log of ``query`` begins and ends: one link's list whole, or the
        stream's part that holds its period (see _bounds)."""
        return ("0", "0") if query.link_id is not None else _bounds(query)

    def _scans(
        self,
        query: LogFilter,
        mode: str,
        newest_first: bool,
        utc_offset: int,
        start: str | None = None,
        end: str | None = None,
    ) -> Iterator[list[Any]]:
        """The script's replies over the part of the log ``query`` covers: one link's own
        list, or the stream's part that holds its period (see _bounds), or that between
        the stream ids ``start`` and ``end``, oldest first."""
        key = EVENTS if query.link_id is None else f"{EVENTS}:{query.link_id}"
        if start is None:
            start = self._range(query)[newest_first]
        if end is None:
            end = self._range(query)[not newest_first]
        scan = self._script("scan", _SCAN)
        while start:
            reply = cast(
                list[Any],
                scan(keys=[key], args=_args(query, mode, start, newest_first, utc_offset, end)),
            )
            yield reply
            start = reply[0]

    # -- the links ----------------------------------------------------------------------

    def link_counts(self, now: float) -> dict[str, int]:
        self._up_to_date()
        return status_counts(self.redis, now, now - self.retention)

    def link_files(self) -> list[str]:
        self._up_to_date()
        return indexed_files(self.redis)

    def links_page(
        self, now: float, statuses: Collection[str], files: Collection[str], limit: int
    ) -> list[Link]:
        self._up_to_date()
        if limit <= 0:
            return []
        if not statuses and not files:
            return self._newest_links(limit)
        gone_before = now - self.retention
        ids = with_status(self.redis, now, gone_before, statuses or list(LinkStatus))
        if files:
            ids &= of_files(self.redis, gone_before, files)
        chosen = sorted(self._created(sorted(ids)))[:limit]
        return self._link_records([link_id for _, link_id in chosen])

    def _newest_links(self, limit: int) -> list[Link]:
        """The ``limit`` newest links kept (the index holds links whose records are gone
        until drop_ended forgets them)."""
        kept: list[tuple[int, str, Link]] = []
        start, chunk = 0, min(limit, LINK_CHUNK) + 1
        while True:
            read = cast(
                list[tuple[str, float]],
                self.redis.zrevrange(LINKS, start, start + chunk - 1, withscores=True),
            )
            records = self._link_records([link_id for link_id, _ in read], keep_gone=True)
            kept += [
                (-int(score), link_id, link)
                for (link_id, score), link in zip(read, records, strict=True)
                if link is not None
            ]
            start += len(read)
            # Read newest first, so by time already; ties in creation time go by id, as in
            # SQLite: read on past the last one kept.
            if len(read) < chunk or (len(kept) >= limit and -read[-1][1] > kept[limit - 1][0]):
                kept.sort(key=lambda item: item[:2])
                return [link for _, _, link in kept[:limit]]

    def _created(self, ids: list[str]) -> Iterator[tuple[int, str]]:
        """(minus the creation time, id) of those of ``ids`` in the index."""
        for n in range(0, len(ids), LINK_CHUNK):
            chunk = ids[n : n + LINK_CHUNK]
            scores = cast(list[Any], self.redis.zmscore(LINKS, chunk))
            yield from ((-int(s), i) for i, s in zip(chunk, scores, strict=True) if s is not None)


class _Tally:
    """The sums of the script's tallies, a chunk at a time."""

    def __init__(self) -> None:
        self.sums = [0, 0, 0, 0, 0]
        self.clients: set[str] = set()  # the addresses of the rows read one by one
        self.summed_clients = 0  # and how many others the days' sets hold
        self.counted_clients = False  # whether the two say how many there are
        self.days: dict[tuple[int, str], list[int]] = {}

    def add(self, reply: list[Any]) -> None:
        _, sums, clients, series = reply[:4]
        self.sums = [total + int(more) for total, more in zip(self.sums, sums, strict=True)]
        self.clients.update(clients)
        for n in range(0, len(series), 4):
            day, file, downloads, sent = series[n : n + 4]
            pair = self.days.setdefault((int(day), file), [0, 0])
            pair[0] += int(downloads)
            pair[1] += int(sent)

    def count_clients_with(self, client: redis.Redis, key: str, low: float) -> None:
        """Count the addresses with those of the sorted set ``key`` scored ``low`` or more
        (the days' sets, or each address by its last day)."""
        read = list(self.clients)
        for n in range(0, len(read), LOG_CHUNK):
            chunk = read[n : n + LOG_CHUNK]
            scores = cast(list[Any], client.zmscore(key, chunk))
            known = (ip for ip, s in zip(chunk, scores, strict=True) if s is not None and s >= low)
            self.clients.difference_update(known)
        self.summed_clients = int(client.zcount(key, low, "+inf"))
        self.counted_clients = True

    def totals(self) -> Totals:
        downloads, aborted, previews, sent, rows = self.sums
        clients = len(self.clients) + self.summed_clients
        return Totals(downloads, aborted, previews, sent, clients, rows)

    def series(self) -> list[DayFile]:
        return [
            DayFile(iso_day(day), file, *self.days[day, file]) for day, file in sorted(self.days)
        ]


def _moment() -> int:
    """Ten seconds of this process's time: what is remembered of an answer lasts no longer
    (a link record Redis expired by itself changes nothing else)."""
    return int(time.monotonic() // 10)


def _bounds(query: LogFilter) -> tuple[str, str]:
    """The stream ids (oldest, newest) that hold ``query``'s period: from an hour before
    ``since`` (ids are the server's time of writing, a little behind or ahead of the
    gateways') to the end (an amended row is written again, later than its time)."""
    low = "-" if query.since is None else str(max(0, int((query.since - 3600) * 1000)))
    return low, "+"


def _args(
    query: LogFilter, mode: str, start: str, newest_first: bool, utc_offset: int, end: str
) -> list[Any]:
    return [
        mode,
        start,
        LOG_CHUNK,
        int(newest_first),
        "" if query.since is None else repr(float(query.since)),
        "" if query.until is None else repr(float(query.until)),
        json.dumps(list(query.files)),
        json.dumps(list(query.outcomes)),
        query.needle,
        utc_offset,
        int(query.link_id is not None),
        end,
        "[]",
        int(bool(query.needle) and not needs_casefold(query.needle)),
    ]


def _rows(flat: list[Any]) -> Iterator[tuple[str, LogRow, bool]]:
    """The script's rows: as kept, as a LogRow, and whether the text is still to match."""
    for n in range(0, len(flat), 4):
        data, file, recipient, maybe = flat[n : n + 4]
        yield data, LogRow(_event(json.loads(data)), file, recipient or None), maybe == 1


def selected(query: LogFilter, row: LogRow) -> bool:
    """Whether ``query`` selects ``row``: what _SCAN decides on the server, in Python."""
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
        return any(holds(field, needle) for field in fields)
    return True


def _event(data: dict[str, Any]) -> DownloadEvent:
    return DownloadEvent(**{**data, "outcome": Outcome(data["outcome"])})
