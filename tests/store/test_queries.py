"""The store's bounded answers for the Links and Activity pages equal what the pages
computed from the whole log (admin_ui.tables), on SQLite and a real redis-server."""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import redis

from admin_ui import tables
from sesame.activity import LogFilter
from sesame.models import DownloadEvent, DownloadStart, Link, Outcome
from sesame.store import Store, open_store

NOW = 1_700_000_000
DAY = 86400
ZONE = ZoneInfo("Asia/Shanghai")  # no daylight saving: one offset
OFFSET = 8 * 3600
FILES = ["a.txt", "b.zip", "芝麻.pdf"]
AGENTS = ["curl/8.1", "Wget/1.21", "Mozilla/5.0 MicroMessenger", "TelegramBot"]


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store holding the same made-up log; records kept for years (Redis expires them by
    the real clock)."""
    keep = 20 * 365 * DAY
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}", retention=keep)
    else:
        opened = open_store(request.getfixturevalue("redis_url"), retention=keep)
    fill(opened)
    yield opened
    opened.close()


def fill(store: Store) -> None:
    """30 links over 40 days, 400 log rows of every outcome, some of a link now gone."""
    rng = random.Random(12)
    ids = [f"L{n:02d}" for n in range(30)]
    for n, link_id in enumerate(ids):
        created = NOW - 40 * DAY + n * DAY
        recipient = ["小明", "Bob", None][n % 3]
        store.add_link(Link(link_id, FILES[n % 3], created, created + DAY, None, recipient))
    for n in range(400):
        outcome = rng.choice(list(Outcome))
        store.add_event(
            DownloadEvent(
                rng.choice([*ids, "gone000001"]),
                NOW - 40 * DAY + n * 8640 + rng.random(),
                rng.choice(["10.0.0.1", "10.0.0.2", "192.168.1.9", None]),
                rng.choice(AGENTS),
                rng.choice([200, 206, 410]),
                rng.randrange(0, 5_000_000),
                outcome,
                outcome is Outcome.COMPLETED and rng.random() < 0.7,
            )
        )


def whole_log(store: Store) -> pd.DataFrame:
    """The log as the pages built it before: every row, every link."""
    links = {link.id: link for link in store.list_links()}
    return tables.events(store.list_events(), links, ZONE)


FILTERS = {
    "everything": LogFilter(),
    "last 7 days": LogFilter(since=NOW - 7 * DAY),
    "one file": LogFilter(files=["b.zip"]),
    "two outcomes": LogFilter(outcomes=["aborted", "preview"]),
    "text in the agent": LogFilter(text=" WGET "),
    "text in the recipient": LogFilter(text="小明"),
    "text in the address": LogFilter(text="192.168"),
    "a period and all": LogFilter(
        since=NOW - 30 * DAY,
        until=NOW - 5 * DAY,
        files=["a.txt", "芝麻.pdf"],
        outcomes=["completed", "aborted"],
        text="10.0",
    ),
}


def shown(store: Store, query: LogFilter) -> pd.DataFrame:
    """What the Activity page showed for ``query`` before, from the whole log."""
    log = whole_log(store)
    rows = tables.matching(log, query.since, query.files, query.outcomes, query.text)
    return rows[rows["at"] < query.until] if query.until is not None else rows


@pytest.mark.parametrize("name", FILTERS)
def test_totals_equal_the_whole_logs(store: Store, name: str) -> None:
    """log_totals gives the Activity page's totals as they were computed from the log."""
    query, rows = FILTERS[name], shown(store, FILTERS[name])
    totals = store.log_totals(query)
    assert totals.rows == len(rows)
    assert totals.downloads == int(rows["counted"].sum())
    assert totals.aborted == int((rows["outcome"] == "aborted").sum())
    assert totals.previews == int((rows["outcome"] == "preview").sum())
    assert totals.bytes_sent == int(rows["bytes"].sum())
    assert totals.clients == rows.loc[rows["client IP"] != "", "client IP"].nunique()


@pytest.mark.parametrize("name", FILTERS)
def test_a_page_of_the_log_is_the_whole_logs_first_rows(store: Store, name: str) -> None:
    """log_page gives the rows the page listed, newest first, in pages that add up."""
    query, rows = FILTERS[name], shown(store, FILTERS[name])
    expected = list(zip(rows["link"], rows["at"], rows["file"], rows["recipient"], strict=True))
    pages = [store.log_page(query, 25, offset) for offset in range(0, len(rows) + 25, 25)]
    found = [
        (row.event.link_id, row.event.at, row.file, row.recipient or "")
        for page in pages
        for row in page
    ]
    assert found == expected
    assert [row.event.at for row in store.log_rows(query)] == sorted(rows["at"])


@pytest.mark.parametrize("name", FILTERS)
def test_series_per_day_and_file_equal_the_whole_logs(store: Store, name: str) -> None:
    """log_series gives the charts' downloads and MiB per local day and file."""
    query, rows = FILTERS[name], shown(store, FILTERS[name])
    series = store.log_series(query, OFFSET)
    for measure in ("downloads", "MiB"):
        table = tables.per_day(rows, measure)  # type: ignore[arg-type]
        expected = {
            (day, file): round(value, 6) for (day, file), value in table.stack().items() if value
        }
        got = {
            (item.day, item.file): round(
                item.downloads if measure == "downloads" else item.bytes_sent / tables.MIB, 6
            )
            for item in series
        }
        assert {k: v for k, v in got.items() if v} == expected


def test_outcome_counts_equal_the_whole_logs(store: Store) -> None:
    """outcome_counts gives the Links page's counts per link and outcome."""
    ids = [link.id for link in store.list_links()] + ["gone000001", "never"]
    before = tables.outcome_counts(store.list_events())
    expected = {
        link_id: {str(outcome): n for outcome, n in before[link_id].items()}
        for link_id in ids
        if link_id in before
    }
    assert store.outcome_counts(ids) == expected


def test_link_files_are_each_file_once(store: Store) -> None:
    """link_files lists the files of the kept links, each once, sorted."""
    assert store.link_files() == sorted(FILES)


def test_one_links_log(store: Store) -> None:
    """A filter by link gives that link's rows, as service.events(link_id) did."""
    expected = [(e.at, e.outcome) for e in store.list_events("L07")]
    page = store.log_page(LogFilter(link_id="L07"), 1000)
    assert [(row.event.at, row.event.outcome) for row in page] == expected


def test_link_counts_and_pages_equal_the_records(store: Store) -> None:
    """link_counts and links_page give what the Links page computed from every record."""
    store.revoke_link("L03", NOW - 10)
    now = NOW - 20 * DAY
    records = store.list_links()
    assert store.link_counts(now) == dict(Counter(str(link.status(now)) for link in records))
    for statuses, files in [((), ()), (("active", "revoked"), ()), ((), ("b.zip",))]:
        expected = [
            link
            for link in records
            if (not statuses or link.status(now) in statuses) and (not files or link.file in files)
        ]
        assert store.links_page(now, statuses, files, 5) == expected[:5]
        assert store.links_page(now, statuses, files, 100) == expected


def test_redis_reads_a_status_or_file_a_few_members_a_trip(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page filtered by status or file reads the sets a chunk at a time, past runs of
    links that share an expiry longer than a chunk, and finds each link once."""
    from sesame.store import redis_status

    monkeypatch.setattr(redis_status, "MEMBERS_READ", 3)
    store = open_store(redis_url, retention=20 * 365 * DAY)
    expiries = [NOW + DAY] * 7 + [NOW + 2 * DAY] * 2 + [NOW + 3 * DAY] * 5
    for n, expires in enumerate(expiries):
        store.add_link(Link(f"L{n:02d}", FILES[n % 2], NOW + n, expires, None, None))
    records = store.list_links()
    for statuses, files in [(("active",), ()), ((), ("a.txt",)), (("active",), ("b.zip",))]:
        expected = [link for link in records if not files or link.file in files]
        assert store.links_page(NOW, statuses, files, 100) == expected
    store.close()


@pytest.mark.parametrize("gone", ["one read before", "the last one read", "one still to read"])
def test_redis_reads_on_past_members_that_leave_meanwhile(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    """A set read a few members a trip gives every member that stays, once, though others
    leave it between the trips (a link revoked or used up meanwhile): the one read last,
    ties of its score, or one not read yet."""
    from itertools import islice

    from sesame.store import redis_status

    monkeypatch.setattr(redis_status, "MEMBERS_READ", 3)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    scores = {f"m{n}": float(1 + n // 4) for n in range(10)}  # runs of four ties
    client.zadd("test:set", scores)
    members = redis_status._members(client, "test:set", "-inf", "(3")
    read = list(islice(members, 3))
    leaving = {"one read before": "m0", "the last one read": "m2", "one still to read": "m5"}
    client.zrem("test:set", leaving[gone])
    read += list(members)
    expected = [m for m, score in scores.items() if score < 3]
    assert read == [m for m in expected if m in read] and len(read) == len(set(read))
    assert set(read) == set(expected) - ({"m5"} if gone == "one still to read" else set())
    client.delete("test:set")
    client.close()


def test_the_redis_scan_knows_every_character_that_folds_to_ascii() -> None:
    """The Redis log scan leaves a row to Python's casefold only if a field holds one of
    these: every character beyond ASCII whose casefold holds ASCII, by this Python's
    Unicode data."""
    from sesame.store.casefold import FOLDS

    folding = [
        char
        for char in map(chr, range(128, sys.maxunicode + 1))
        if not "\ud800" <= char <= "\udfff" and any(ord(c) < 128 for c in char.casefold())
    ]
    assert FOLDS == folding


def test_no_character_past_the_last_folded_one_changes_under_casefold() -> None:
    """casefold.needs_casefold reads the characters up to LAST_FOLDED: none after it
    changes under casefold, by this Python's Unicode data."""
    from sesame.store.casefold import LAST_FOLDED

    assert chr(LAST_FOLDED).casefold() != chr(LAST_FOLDED)
    assert all(chr(n).casefold() == chr(n) for n in range(LAST_FOLDED + 1, sys.maxunicode + 1))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ss", ["L1"]),  # 'ß'
        ("K", ["L1"]),  # the Kelvin sign
        ("fi", ["L1"]),  # the ligature 'ﬁ'
        ("STRASSE", ["L1"]),
        ("straße", ["L1"]),
        ("josé", ["L3"]),
        ("É", ["L3"]),
        ("über", ["L3"]),  # in the user agent
        ("小明", ["L2"]),
        ("zz", []),
    ],
)
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_needle_finds_what_casefold_finds(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, text: str, found: list[str]
) -> None:
    """A search matches through casefold on both stores, as the page did, though SQLite's
    LIKE and Lua's lower fold ASCII letters only: 'ss' finds 'Straße', 'k' the Kelvin sign,
    'fi' the ligature 'ﬁ', 'É' finds 'josé'; and nothing else."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("redis_url") if kind == "redis" else url
    store = open_store(url, retention=20 * 365 * DAY)
    for n, (recipient, agent) in enumerate(
        [("Straße ﬁle \u212a", "curl"), ("小明", "curl"), ("José", "Mozilla ÜBER")], 1
    ):
        store.add_link(Link(f"L{n}", "a.txt", NOW, NOW + DAY, None, recipient))
        event = DownloadEvent(f"L{n}", NOW + n, "10.0.0.1", agent, 200, n, Outcome.COMPLETED)
        store.add_event(event)
    query = LogFilter(text=text)
    assert [row.event.link_id for row in store.log_page(query, 10)] == found[::-1]
    assert store.log_totals(query).bytes_sent == sum(int(link_id[1]) for link_id in found)
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_search_with_a_nul_or_past_any_field_finds_what_casefold_finds(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """A NUL in the search text does not cut the pattern short on SQLite ('a\\0b' found
    every field holding 'a'), a tab or a C1 control (a UTF-8 agent read as Latin-1) is
    searched for as it is, and a text longer than any field (pasted into the page) finds
    nothing on either store, as casefold does, rather than failing on SQLite."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("redis_url") if kind == "redis" else url
    store = open_store(url, retention=20 * 365 * DAY)
    store.add_link(Link("L1", "a.txt", NOW, NOW + DAY, None, "Ana"))
    for n, agent in enumerate(["ab", "a\x00b", "Foo\tBar/1", "FooBar/2", "CafÃ\x80\x99s/1"]):
        event = DownloadEvent("L1", NOW + n, "10.0.0.1", agent, 200, 5, Outcome.COMPLETED)
        store.add_event(event)
    cases = {"a\x00b": ["a\x00b"], "a\x00": ["a\x00b"], "x\x00": [], "ana" * 20_000: []}
    cases |= {"foo\tbar": ["Foo\tBar/1"], "Ã\x80\x99s": ["CafÃ\x80\x99s/1"], "ab": ["ab"]}
    for text, agents in cases.items():
        query = LogFilter(text=text)
        found = [row.event.user_agent for row in store.log_page(query, 10)]
        assert found == agents, repr(text[:8])
        assert store.log_totals(query).rows == len(agents)
    store.close()


def test_a_link_whose_record_redis_expired_leaves_the_counts(redis_url: str) -> None:
    """A link record Redis expires by itself (SESAME_RETENTION after the link) is out of
    link_counts at once, and out of the index and link_files after drop_ended."""
    store = open_store(redis_url, retention=1)
    ended = int(time.time())  # the record is kept a second more
    store.add_link(Link("gone", "old.txt", ended - 60, ended, None, None))
    store.add_link(Link("kept", "new.txt", ended, ended + 3600, None, None))
    deadline = time.monotonic() + 5
    while store.get_link("gone") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.get_link("gone") is None
    assert store.link_counts(time.time()) == {"active": 1}
    assert store.link_files() == ["new.txt", "old.txt"]  # until drop_ended
    store.drop_ended(int(time.time()) - 1, 10)
    assert store.link_files() == ["new.txt"]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.zrange("sesame:status:live", 0, -1) == ["kept"]
    assert not client.exists("sesame:file-links:old.txt")
    client.close()
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_an_outcome_filter_finds_rows_the_store_wrote_itself(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """A row the store writes as it settles a lapsed lease (on Redis, encoded by its Lua
    scripts, not by Python) is found by an outcome filter, as the gateway's rows are."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("redis_url") if kind == "redis" else url
    store = open_store(url, retention=20 * 365 * DAY)
    store.add_link(Link("L1", "a.txt", NOW, NOW + DAY, None, "Bob"))
    for slot, at in (("dead", NOW), ("next", NOW + 61)):  # the second settles the first
        event = DownloadEvent("L1", at, "10.0.0.1", "curl/8", 200, 10, Outcome.COMPLETED, True)
        start = DownloadStart("L1", at, 10, True, None, at // DAY, None, slot, at + 60, None, event)
        assert store.begin_download(start) is None
    for text in ("", "curl"):
        query = LogFilter(outcomes=["aborted"], text=text)
        assert [row.event.outcome for row in store.log_page(query, 10)] == [Outcome.ABORTED]
        assert store.log_totals(query).aborted == 1
    store.close()
