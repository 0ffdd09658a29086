"""Group commit on a real SQLite file (sesame.store.grouping): the downloads of many threads
begun in few transactions, each exact against the link's limit; a failing piece of work
spoils no other; a full disk or a lock held by another process fails every waiting thread
cleanly, and leaves nothing held. A batch begun together decides as one by one, on SQLite
and on a real Redis (tests/store/test_redis_batch.py has the rest of Redis's batches)."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sesame import ranges
from sesame.downloads import Admitted, Download
from sesame.errors import LinkExhausted, LinkRevoked, StoreUnavailable
from sesame.store import grouping
from tests.support import BODY, FILE, VISITOR, FakeClock, make_service, take, tmpfs


def _at_once(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Every job in a thread of its own, started together; their answers or errors."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return job()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the transactions the group commit opens."""
    opened: list[int] = []
    batch = grouping.GroupCommit._batch

    def counting(self: grouping.GroupCommit, db: sqlite3.Connection, pending: Any) -> Any:
        opened.append(len(pending))
        return batch(self, db, pending)

    monkeypatch.setattr(grouping.GroupCommit, "_batch", counting)
    return opened


def test_forty_threads_begin_in_few_transactions_and_count_exactly(
    tmp_path: Path, transactions: list[int]
) -> None:
    service = make_service(tmp_path, FakeClock())
    link = service.share(FILE, max_downloads=5).link
    answers = _at_once([lambda: take(service, link, len(BODY))] * 40)
    assert sum(isinstance(a, Download) for a in answers) == 5
    assert sum(isinstance(a, LinkExhausted) for a in answers) == 35
    assert sum(transactions) >= 40 and len(transactions) < 40  # grouped
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 5
    assert len(service.events(link.id)) == 5


def test_a_failing_piece_of_work_spoils_no_other(tmp_path: Path) -> None:
    service = make_service(tmp_path, FakeClock())
    store: Any = service.store
    link = service.share(FILE).link

    def broken(db: sqlite3.Connection) -> None:
        db.execute("UPDATE links SET downloads = 99 WHERE id = ?", (link.id,))
        raise ValueError("a bug in the middle of the work")

    answers = _at_once(
        [lambda: take(service, link, len(BODY))] * 10 + [lambda: store._grouped(broken)]
    )
    assert sum(isinstance(a, Download) for a in answers) == 10
    assert isinstance(answers[-1], ValueError)
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 10  # the bug's write was undone


def test_a_full_disk_fails_every_waiting_download_and_holds_nothing(tmp_path: Path) -> None:
    """On a full disk each thread hears the store is unavailable, nothing of theirs is
    kept, the process's write lock is free again, and once there is room all works."""
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        service = make_service(tmp_path, FakeClock(), data_dir=mnt, store_timeout=0.5)
        store: Any = service.store
        link = service.share(FILE, max_downloads=100).link
        with (mnt / "filler").open("wb") as out, pytest.raises(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        answers = _at_once([lambda: take(service, link, len(BODY))] * 20)
        assert all(isinstance(a, StoreUnavailable) for a in answers), answers
        assert not store._writing.locked()
        (mnt / "filler").unlink()
        record = service.store.get_link(link.id)
        assert record is not None and record.downloads == 0
        assert service.events(link.id) == []
        assert isinstance(take(service, link, len(BODY)), Download)


def test_a_lock_held_elsewhere_fails_each_thread_on_time(tmp_path: Path) -> None:
    """Another process holds the write lock: every thread gives up after the store's
    timeout (not one timeout after another), and all works once it is let go."""
    service = make_service(tmp_path, FakeClock(), store_timeout=0.5)
    store: Any = service.store
    link = service.share(FILE).link
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        answers = _at_once([lambda: take(service, link, len(BODY))] * 12)
        elapsed = time.monotonic() - started
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert all(isinstance(a, StoreUnavailable) for a in answers), answers
    assert elapsed < 12 * 0.5  # waited side by side, not each after the other
    assert not store._writing.locked()
    assert isinstance(take(service, link, len(BODY)), Download)


def test_a_batch_of_downloads_begins_in_one_transaction_each_with_its_own_answer(
    tmp_path: Path, transactions: list[int]
) -> None:
    service = make_service(tmp_path, FakeClock())
    downloads = service.downloads
    one = service.share(FILE, max_downloads=1).link
    other = service.share(FILE, max_downloads=3).link
    revoked = service.share(FILE, max_downloads=5).link
    free = service.share(FILE).link  # no limit: held back, written first by the same transaction
    service.revoke(revoked.id)
    starting = [
        downloads.starting(Admitted(link), ranges.whole(len(BODY)), VISITOR, True)
        for link in (one, free, one, other, revoked, free)
    ]
    answers = downloads.begin_all(starting)
    assert isinstance(answers[0], Download)
    assert isinstance(answers[1], Download)
    assert isinstance(answers[2], LinkExhausted)  # the first took the only download
    assert isinstance(answers[3], Download)
    assert isinstance(answers[4], LinkRevoked)
    assert isinstance(answers[5], Download)
    assert len(transactions) == 1  # one transaction for the batch
    counts = {link.id: service.store.get_link(link.id) for link in (one, other, free, revoked)}
    assert [record.downloads for record in counts.values() if record] == [1, 1, 2, 0]
    assert [len(service.events(link.id)) for link in (one, other, free, revoked)] == [1, 1, 2, 0]
    assert service.downloads.usage().today == 4 * len(BODY)  # the day's bytes, once each


def test_a_failing_store_fails_each_of_a_batch_as_unavailable(tmp_path: Path) -> None:
    """Another process holds the write lock: each download of a batch hears the store is
    unavailable (as the guard says it of one raised), and nothing is taken."""
    service = make_service(tmp_path, FakeClock(), store_timeout=0.3)
    store: Any = service.store
    link = service.share(FILE, max_downloads=5).link  # with no limit, it would be held back
    starting = [
        service.downloads.starting(Admitted(link), ranges.whole(len(BODY)), VISITOR, True)
    ] * 2
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held throughout
    try:
        answers = store.begin_downloads([each.start for each in starting])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(answers) == 2
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 0


def _two_stores(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> tuple[Any, Any]:
    """Two services on stores of ``kind`` that share nothing (two Redis databases)."""
    if kind == "sqlite":
        return make_service(tmp_path / "together", FakeClock()), make_service(
            tmp_path / "alone", FakeClock()
        )
    url = request.getfixturevalue("redis_url").rpartition("/")[0]
    now = time.time()  # Redis expires what it keeps by its own clock
    return (
        make_service(tmp_path / "together", FakeClock(now), store_url=f"{url}/1"),
        make_service(tmp_path / "alone", FakeClock(now), store_url=f"{url}/2"),
    )


@pytest.mark.parametrize(
    ("kind", "seed"), [("sqlite", seed) for seed in range(12)] + [("redis", s) for s in range(6)]
)
def test_a_batch_begun_together_decides_as_one_by_one(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, seed: int
) -> None:
    """Random batches of small downloads over links with and without limits, some revoked,
    the same link many times over: begun together (SQLite: one read and one update per
    link, one insert of the rows; Redis: one round trip), each is let in or refused as it
    is when begun one by one, and the links, the log and the day's bytes end up the same."""
    chance = random.Random(seed)
    together, alone = _two_stores(request, tmp_path, kind)
    links = [
        together.share(FILE, max_downloads=chance.choice([None, 1, 2, 3, 6])).link for _ in range(4)
    ]
    for link in links:
        alone.store.add_link(link)
        # A link with no limit is let in without asking the store again once found open (and
        # written a moment later): only the gateway's admission refuses it revoked.
        if link.max_downloads is not None and chance.random() < 0.2:
            together.revoke(link.id)
            alone.revoke(link.id)
    size = len(BODY)
    for _ in range(3):
        batch = [chance.choice(links) for _ in range(chance.randint(2, 12))]
        starts = [
            together.downloads.starting(Admitted(link), ranges.whole(size), VISITOR, True).start
            for link in batch
        ]
        assert together.store.begin_downloads(starts) == [
            alone.store.begin_download(start) for start in starts
        ]
    together.store.flush()
    for link in links:
        mine, theirs = together.store.get_link(link.id), alone.store.get_link(link.id)
        assert mine is not None and theirs is not None
        assert (mine.downloads, mine.bytes_served, mine.started_at) == (
            theirs.downloads,
            theirs.bytes_served,
            theirs.started_at,
        )
        assert len(together.events(link.id)) == len(alone.events(link.id))
    assert together.downloads.usage().today == alone.downloads.usage().today


def test_a_piece_of_work_interrupted_spoils_no_other(tmp_path: Path) -> None:
    """A piece of work that raises something other than an Exception (an interruption) in
    a batch run without savepoints: the batch runs again, and only that piece fails."""

    class Interrupted(BaseException):
        pass

    db = sqlite3.connect(tmp_path / "t.db", isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE t (v INTEGER)")

    def fine(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO t VALUES (1)")
        return "done"

    def interrupted(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (2)")
        raise Interrupted

    group = grouping.GroupCommit(threading.Lock(), 1.0)
    (value, error), (nothing, raised) = group.run_all(lambda: db, [fine, interrupted])
    assert (value, error, nothing) == ("done", None, None) and isinstance(raised, Interrupted)
    assert db.execute("SELECT v FROM t").fetchall() == [(1,)]
    db.close()
