"""The Redis store's index of links by status and by file: what the Links page counts and
lists its files from without reading every link record.

Each link is in one of three sorted sets, scored by its expiry: ``live`` (neither revoked nor
used up: active until it expires, expired after), ``used`` (used up, not revoked) and
``revoked``; and in its file's set ``file-links:FILE``, the file's name in ``link-files``.
The scripts that change what decides a link's status file it again (INDEX below): adding or
issuing it, revoking it, a download that uses it up, one that gives its count back.

A link's record leaves Redis by itself SESAME_RETENTION after it expires (its TTL): the
counts leave out whatever expired longer ago than that, and ``drop_ended`` clears it from
the sets (and its file from the files, if it was the file's last) with the links it
forgets. A record that goes sooner than that (SESAME_RETENTION raised since the link was
made, or a Redis that evicts keys: run it with ``maxmemory-policy noeviction``) is still
counted, as expired, until the current SESAME_RETENTION has passed since its expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from sesame.models import LinkStatus
from sesame.store.redis_keys import PREFIX

if TYPE_CHECKING:  # imported by the migrations of SQLite too: a gateway on SQLite loads no redis
    import redis

STATUS = PREFIX + "status:"  # + live, used, revoked
STATUSES = ("live", "used", "revoked")
FILE_LINKS = PREFIX + "file-links:"  # + a file's name: its links, scored by expiry
LINK_FILES = PREFIX + "link-files"  # the names of the file sets

# index_link(id): files the link as its record says now (false if it has none).
INDEX = (
    r"""
local function index_link(id)
  local f = redis.call('HMGET', '{PREFIX}link:' .. id, 'file', 'expires_at', 'revoked_at',
                       'max_downloads', 'downloads')
  if not f[1] then return false end
  local status = 'live'
  if f[3] then status = 'revoked'
  elseif f[4] and tonumber(f[5] or '0') >= tonumber(f[4]) then status = 'used' end
  for _, s in ipairs({'live', 'used', 'revoked'}) do
    if s == status then redis.call('ZADD', '{STATUS}' .. s, f[2], id)
    else redis.call('ZREM', '{STATUS}' .. s, id) end
  end
  redis.call('ZADD', '{FILE_LINKS}' .. f[1], f[2], id)
  redis.call('SADD', '{LINK_FILES}', f[1])
  return true
end
""".replace("{PREFIX}", PREFIX)
    .replace("{STATUS}", STATUS)
    .replace("{FILE_LINKS}", FILE_LINKS)
    .replace("{LINK_FILES}", LINK_FILES)
)

# KEYS: none. ARGV: link ids. Files each (the migration that brings the index in).
INDEX_LINKS = INDEX + "\nfor _, id in ipairs(ARGV) do index_link(id) end\nreturn #ARGV\n"

# KEYS: none. ARGV: the expiry before which records are gone, then file names. Clears the
# status sets of those links (with no names) or the names' sets, and drops the names left
# with no link (in one script: a link added meanwhile keeps its file).
_LAPSE = (
    r"""
local cut = '(' .. ARGV[1]
if #ARGV == 1 then
  for _, s in ipairs({'live', 'used', 'revoked'}) do
    redis.call('ZREMRANGEBYSCORE', '{STATUS}' .. s, '-inf', cut)
  end
end
for i = 2, #ARGV do
  redis.call('ZREMRANGEBYSCORE', '{FILE_LINKS}' .. ARGV[i], '-inf', cut)
  if redis.call('EXISTS', '{FILE_LINKS}' .. ARGV[i]) == 0 then
    redis.call('SREM', '{LINK_FILES}', ARGV[i])
  end
end
return 1
""".replace("{STATUS}", STATUS)
    .replace("{FILE_LINKS}", FILE_LINKS)
    .replace("{LINK_FILES}", LINK_FILES)
)
LAPSE_FILES = 500  # file names a script
MEMBERS_READ = 5000  # ids of a status or a file's set read a trip (about 1 ms of Redis's time)


def status_counts(client: redis.Redis, now: float, gone_before: float) -> dict[str, int]:
    """How many links are in each status at ``now`` (a LinkStatus value; empty ones left
    out), of those that expired after ``gone_before`` (older records are gone)."""
    ranges = _ranges(now, gone_before)
    with client.pipeline(transaction=True) as pipe:
        for name, low, high in ranges.values():
            pipe.zcount(STATUS + name, low, high)
        counts = pipe.execute()
    return {status: int(n) for status, n in zip(ranges, counts, strict=True) if n}


def indexed_files(client: redis.Redis) -> list[str]:
    """The files of the links kept, each once, sorted (with those of links whose records
    are gone until drop_ended clears them)."""
    return sorted(cast(set[str], client.smembers(LINK_FILES)))


def with_status(
    client: redis.Redis, now: float, gone_before: float, statuses: Iterable[str]
) -> set[str]:
    """The ids of the links in ``statuses`` (LinkStatus values) at ``now``, read a chunk at
    a time (see _members): a link whose status changes meanwhile may be missing from this
    page, not from the next."""
    ranges = _ranges(now, gone_before)
    chosen = (ranges[status] for status in set(statuses))
    return set().union(*(_members(client, STATUS + name, low, high) for name, low, high in chosen))


def _ranges(now: float, gone_before: float) -> dict[str, tuple[str, str, str]]:
    """Each status (a LinkStatus value) at ``now``: its set and range of expiry, of the
    links that expired after ``gone_before``. Active until its expiry, expired after it, as
    Link.status says."""
    cut, at = f"({gone_before!r}", repr(float(now))
    return {
        str(LinkStatus.ACTIVE): ("live", at, "+inf"),
        str(LinkStatus.EXPIRED): ("live", cut, f"({at}"),
        str(LinkStatus.USED_UP): ("used", cut, "+inf"),
        str(LinkStatus.REVOKED): ("revoked", cut, "+inf"),
    }


def of_files(client: redis.Redis, gone_before: float, files: Iterable[str]) -> set[str]:
    """The ids of the links to ``files``."""
    low = f"({gone_before!r}"
    return set().union(*(_members(client, FILE_LINKS + file, low, "+inf") for file in set(files)))


def _members(client: redis.Redis, key: str, low: str, high: str) -> Iterator[str]:
    """The members of the sorted set ``key`` scored from ``low`` to ``high`` (as
    ZRANGEBYSCORE reads them), MEMBERS_READ a trip: a set of a million links blocks Redis
    no longer than one of a few thousand. Each trip goes on from the last member read, by
    its rank now (ZRANK), so that members leaving the set meanwhile move nothing that is
    still to be read; if that member itself left, from the rest of its score."""
    read = _by_score(client, key, low, high)
    last: float | None = None
    tied: set[str] = set()  # the members of score ``last`` given so far
    while True:
        for member, score in read:
            if score != last:
                last, tied = score, set()
            tied.add(member)
            yield member
        if len(read) < MEMBERS_READ or last is None:
            return
        rank = cast(int | None, client.zrank(key, read[-1][0]))
        if rank is not None:
            following = cast(
                list[tuple[str, float]],
                client.zrange(key, rank + 1, rank + MEMBERS_READ, withscores=True),
            )
            read = [(m, score) for m, score in following if _at_most(score, high)]
            continue
        rest = cast(list[str], client.zrangebyscore(key, last, last))  # its ties only
        yield from (member for member in rest if member not in tied)
        read, last, tied = _by_score(client, key, f"({last!r}", high), None, set()


def _by_score(client: redis.Redis, key: str, low: str, high: str) -> list[tuple[str, float]]:
    read = client.zrangebyscore(key, low, high, start=0, num=MEMBERS_READ, withscores=True)
    return cast(list[tuple[str, float]], read)


def _at_most(score: float, high: str) -> bool:
    """Whether ``score`` is within ZRANGEBYSCORE's upper bound ``high``."""
    return score < float(high[1:]) if high.startswith("(") else score <= float(high)


def unindex(pipe: Any, links: Iterable[tuple[str, str | None]]) -> None:
    """Queue on ``pipe`` the removal of ``links`` (id, file or None if unknown) from the
    index."""
    links = list(links)
    if not links:
        return
    ids = [link_id for link_id, _ in links]
    for status in STATUSES:
        pipe.zrem(STATUS + status, *ids)
    for link_id, file in links:
        if file is not None:
            pipe.zrem(FILE_LINKS + file, link_id)


def lapse(client: redis.Redis, gone_before: float) -> None:
    """Clear the index of links that expired before ``gone_before``: the status sets in one
    script, the files' a few hundred a script (a site may have many)."""
    script, cut = client.register_script(_LAPSE), repr(float(gone_before))
    script(args=[cut])
    names = sorted(cast(set[str], client.smembers(LINK_FILES)))
    for start in range(0, len(names), LAPSE_FILES):
        script(args=[cut, *names[start : start + LAPSE_FILES]])
