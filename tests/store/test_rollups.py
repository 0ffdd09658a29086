"""The Activity page's totals and series from the stores' sums (rolled up a batch at a time
behind a cursor) equal what the page computed from the whole log, on randomized logs: rows
arriving between batches, rows amended after they were rolled up, links forgotten by
retention, and periods that begin in the middle of a day of the browser's zone."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest
import redis

from sesame.activity import DayFile, LogFilter, Totals
from sesame.models import DownloadEnd, DownloadEvent, Link, Outcome
from sesame.store import Store, open_store
from tests.store.test_queries import AGENTS, DAY, FILES, NOW, shown

OFFSETS = [8 * 3600, 0, -5 * 3600, 5 * 3600 + 1800]  # Shanghai first: the test's ZONE


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store that keeps records for years (Redis expires them by the real clock)."""
    keep = 20 * 365 * DAY
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}", retention=keep)
    else:
        opened = open_store(request.getfixturevalue("redis_url"), retention=keep)
    yield opened
    opened.close()


class Log:
    """Made-up use of a store: links, rows, amends, retention, and sums rolled up between."""

    def __init__(self, store: Store, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.rows: list[DownloadEvent] = []
        self.ids: list[str] = []

    def links(self, count: int) -> None:
        for _ in range(count):
            n = len(self.ids)
            created = NOW - 40 * DAY + self.rng.randrange(38 * DAY)
            link_id = f"L{n:02d}"
            recipient = ["小明", "Bob", None][n % 3]
            lifetime = self.rng.choice([3600, DAY, 3 * DAY])
            self.store.add_link(
                Link(link_id, FILES[n % 3], created, created + lifetime, None, recipient)
            )
            self.ids.append(link_id)

    def rows_added(self, count: int) -> None:
        for _ in range(count):
            outcome = self.rng.choice(list(Outcome))
            event = DownloadEvent(
                self.rng.choice([*self.ids, "gone000001"]),
                NOW - 40 * DAY + self.rng.random() * 40 * DAY,
                self.rng.choice(["10.0.0.1", "10.0.0.2", "192.168.1.9", None, ""]),
                self.rng.choice(AGENTS),
                self.rng.choice([200, 206, 410]),
                self.rng.randrange(0, 5_000_000),
                outcome,
                outcome is Outcome.COMPLETED and self.rng.random() < 0.7,
            )
            self.store.add_event(event)
            self.rows.append(event)

    def amended(self, count: int) -> None:
        """Rows of downloads settled as they began, turned out aborted (the newest ones,
        as in the gateway: a download ends soon after it began)."""
        for old in self.rng.sample(self.rows[-30:], count):
            new = replace(
                old,
                at=old.at + 5,
                outcome=Outcome.ABORTED,
                counted=False,
                bytes_sent=old.bytes_sent // 2,
            )
            end = DownloadEnd(old.link_id, 0, False, int(old.at // DAY), "no-lease", new, old)
            self.store.end_download(end)
            self.rows[self.rows.index(old)] = new

    def rolled(self) -> None:
        """A few batches of the sums, not necessarily all of them."""
        for _ in range(self.rng.randrange(4)):
            self.store.roll_up(self.rng.randrange(1, 60))

    def forgotten(self) -> None:
        """Retention forgets the links that ended before the 20th day, with their rows."""
        self.store.drop_ended(NOW - 20 * DAY, 7)


def filters(rng: random.Random) -> dict[str, LogFilter]:
    mid_day = NOW - 7 * DAY - rng.randrange(1, DAY)  # since: in the middle of some day
    return {
        "everything": LogFilter(),
        "since a moment of a day": LogFilter(since=mid_day),
        "since a midnight in Shanghai": LogFilter(since=(NOW // DAY - 9) * DAY - 8 * 3600),
        "one file": LogFilter(files=["b.zip"]),
        "outcomes and a period": LogFilter(
            since=mid_day - 10 * DAY, until=mid_day, outcomes=["aborted", "completed"]
        ),
        "within a day": LogFilter(since=mid_day, until=mid_day + 3600),
        "files, outcome, until": LogFilter(
            until=NOW - 3 * DAY - 77, files=["a.txt", "芝麻.pdf"], outcomes=["preview"]
        ),
        "a text": LogFilter(since=mid_day - 10 * DAY, text="wget"),
    }


def check(store: Store, rng: random.Random) -> None:
    """Totals and series of every filter and day boundary equal the whole log's."""
    for name, query in filters(rng).items():
        rows = shown(store, query)
        totals = store.log_totals(query)
        expected = (
            len(rows),
            int(rows["counted"].sum()),
            int((rows["outcome"] == "aborted").sum()),
            int((rows["outcome"] == "preview").sum()),
            int(rows["bytes"].sum()),
            rows.loc[rows["client IP"] != "", "client IP"].nunique(),
        )
        got = (
            totals.rows,
            totals.downloads,
            totals.aborted,
            totals.previews,
            totals.bytes_sent,
            totals.clients,
        )
        assert got == expected, name
        for offset in OFFSETS:
            assert _series(store.log_series(query, offset)) == _brute_series(rows, offset), name


def _series(series: list[DayFile]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(item.day, item.file): (item.downloads, item.bytes_sent) for item in series}


def _brute_series(rows: pd.DataFrame, offset: int) -> dict[tuple[str, str], tuple[int, int]]:
    """Counted downloads and bytes per day at ``offset`` and file, from the rows."""
    sums: dict[tuple[str, str], tuple[int, int]] = {}
    for at, file, counted, sent in zip(
        rows["at"], rows["file"], rows["counted"], rows["bytes"], strict=True
    ):
        day = time.strftime("%Y-%m-%d", time.gmtime(at + offset))
        n, b = sums.get((day, file), (0, 0))
        sums[day, file] = (n + int(counted), b + int(sent))
    return sums


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sums_answer_as_the_whole_log(store: Store, seed: int) -> None:
    """At every step (rows added, some rolled up, some amended, links forgotten), the
    totals and series equal the whole log's."""
    log = Log(store, seed)
    log.links(16)
    log.rows_added(120)
    check(store, log.rng)
    log.rolled()
    check(store, log.rng)
    for _ in range(3):
        log.rows_added(log.rng.randrange(40))
        log.rolled()
        log.amended(3)
        check(store, log.rng)
    while store.roll_up(50):
        pass
    log.amended(4)  # rolled up already: the sums move with them
    check(store, log.rng)
    log.forgotten()
    check(store, log.rng)
    log.rows_added(30)
    log.rolled()
    check(store, log.rng)


def test_a_batch_rolled_up_during_a_query_is_counted_once(store: Store) -> None:
    """Batches rolled up by another thread while the page asks (and rows arriving) never
    count a row twice or miss one: each answer sees one moment of the log."""
    log = Log(store, 4)
    log.links(8)
    log.rows_added(300)
    query = LogFilter(since=NOW - 30 * DAY - 4321)
    stop = threading.Event()

    def roll() -> None:
        while not stop.is_set():
            store.roll_up(3)

    roller = threading.Thread(target=roll)
    roller.start()
    try:
        for _ in range(40):
            expected = len(shown(store, query))  # rows come only from this thread
            assert store.log_totals(query).rows == expected
            series = store.log_series(query, 3600)
            assert sum(item.bytes_sent for item in series) == store.log_totals(query).bytes_sent
            log.rows_added(2)
    finally:
        stop.set()
        roller.join()
    assert store.log_totals(query).rows == len(shown(store, query))


def test_rows_trimmed_by_age_leave_the_sums_with_them(redis_url: str) -> None:
    """Redis trims its log by age (the entries written more than SESAME_RETENTION ago)
    exactly, as retention sweeps, and takes them out of the sums in the same script: what
    the pages show afterwards is what the rows left add up to."""
    store = open_store(redis_url, retention=30 * DAY)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    for n, file in enumerate(FILES):
        store.add_link(Link(f"L{n}", file, int(now - 90 * DAY), int(now + DAY)))
    rng = random.Random(5)
    for n in range(240):
        at = now - 60 * DAY + n * DAY / 4
        row = DownloadEvent(
            f"L{n % len(FILES)}", at, f"10.0.0.{n % 7}", "curl", 200, n, Outcome.COMPLETED, True
        )
        # Written as a gateway writes it (ids in the server's time), a few late by hours.
        written = at + (5 * 3600 if n % 9 == 0 else 1)
        client.xadd("sesame:events", {"e": json.dumps(asdict(row))}, id=f"{int(written * 1000)}-0")
    while store.roll_up(37):
        pass
    store.drop_ended(int(now - 30 * DAY), 50)
    left = [json.loads(fields["e"]) for _, fields in client.xrange("sesame:events")]
    assert 110 < len(left) < 130  # those written in the last 30 days
    assert all(
        int(entry_id.split("-")[0]) >= (now - 30 * DAY) * 1000
        for entry_id, _ in client.xrange("sesame:events")
    )
    assert store.log_totals(LogFilter()) == Totals(
        len(left), 0, 0, sum(r["bytes_sent"] for r in left), 7, len(left)
    )
    check(store, rng)
    store.close()
    client.close()


def test_a_row_of_no_bytes_leaves_the_sums_it_shared(redis_url: str) -> None:
    """A row that sent nothing goes out of a day's sums that other rows still hold (Lua's
    0 times -1 is -0, which Redis refuses as an increment): retention sweeps on."""
    store = open_store(redis_url, retention=30 * DAY)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now = time.time()
    store.add_link(Link("L0", FILES[0], int(now - 90 * DAY), int(now + DAY)))
    at = now - 60 * DAY
    for n, sent in enumerate([0, 1234, 0]):
        row = DownloadEvent("L0", at + n, "10.0.0.1", "curl", 200, sent, Outcome.ABORTED, False)
        client.xadd("sesame:events", {"e": json.dumps(asdict(row))}, id=f"{int(at * 1000) + n}-0")
    recent = DownloadEvent("L0", now - DAY, "10.0.0.1", "curl", 200, 99, Outcome.COMPLETED, True)
    client.xadd("sesame:events", {"e": json.dumps(asdict(recent))}, id=f"{int(recent.at * 1000)}-0")
    while store.roll_up(1):
        pass
    store.drop_ended(int(now - 30 * DAY), 50)
    assert client.xlen("sesame:events") == 1
    assert store.log_totals(LogFilter()) == Totals(1, 0, 0, 99, 1, 1)
    store.close()
    client.close()
