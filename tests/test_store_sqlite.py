"""The SQLite store: records, atomic download counters, the download log."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support import NOW

from sesame.errors import ConfigError
from sesame.models import DownloadEvent, Link, Outcome
from sesame.store import open_store
from sesame.store.sqlite import SQLiteStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sesame.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db)
    yield store
    store.close()


def make_link(link_id: str = "link0000001", **fields: object) -> Link:
    base = Link(id=link_id, file="hello.txt", created_at=NOW, expires_at=NOW + 600)
    return replace(base, **fields)  # type: ignore[arg-type]


def event(link_id: str, at: float, status: int = 200) -> DownloadEvent:
    return DownloadEvent(link_id, at, "127.0.0.1", "curl/7.88", status, 14, Outcome.COMPLETED)


def test_add_and_get(store: SQLiteStore) -> None:
    """A link comes back exactly as it was added; an unknown id gives None."""
    link = make_link(max_downloads=3, recipient="小明", note="for the demo")
    store.add_link(link)
    assert store.get_link(link.id) == link
    assert store.get_link("nope") is None


def test_kept_across_instances(db: Path) -> None:
    """Records are in the file: another store on the same path sees them."""
    first = SQLiteStore(db)
    first.add_link(make_link())
    first.close()
    second = SQLiteStore(db)
    assert second.get_link("link0000001") == make_link()
    second.close()


def test_list_newest_first(store: SQLiteStore) -> None:
    """list_links gives every record, newest first, ties by id."""
    store.add_link(make_link("old", created_at=NOW - 10))
    store.add_link(make_link("b-new"))
    store.add_link(make_link("a-new"))
    assert [link.id for link in store.list_links()] == ["a-new", "b-new", "old"]


def test_revoke(store: SQLiteStore) -> None:
    """Revoking stamps the time once; revoking again keeps the first time."""
    store.add_link(make_link())
    assert store.revoke_link("link0000001", NOW + 5) == make_link(revoked_at=NOW + 5)
    revoked = store.revoke_link("link0000001", NOW + 9)
    assert revoked is not None and revoked.revoked_at == NOW + 5


def test_revoke_unknown(store: SQLiteStore) -> None:
    """Revoking an unknown id gives None."""
    assert store.revoke_link("nope", NOW) is None


def test_claim_counts_up_to_the_limit(store: SQLiteStore) -> None:
    """claim_download succeeds max_downloads times, then fails and takes nothing."""
    store.add_link(make_link(max_downloads=2))
    assert [store.claim_download("link0000001") for _ in range(3)] == [True, True, False]
    link = store.get_link("link0000001")
    assert link is not None and link.downloads == 2


def test_claim_unlimited(store: SQLiteStore) -> None:
    """A link without a limit can always be claimed, and is counted."""
    store.add_link(make_link())
    assert all(store.claim_download("link0000001") for _ in range(50))
    link = store.get_link("link0000001")
    assert link is not None and link.downloads == 50


def test_claim_revoked_or_unknown(store: SQLiteStore) -> None:
    """A revoked or unknown link cannot be claimed."""
    store.add_link(make_link(revoked_at=NOW))
    assert store.claim_download("link0000001") is False
    assert store.claim_download("nope") is False


def test_release(store: SQLiteStore) -> None:
    """release_download gives a claim back, and never counts below zero."""
    store.add_link(make_link(max_downloads=1))
    assert store.claim_download("link0000001")
    store.release_download("link0000001")
    store.release_download("link0000001")
    link = store.get_link("link0000001")
    assert link is not None and link.downloads == 0
    assert store.claim_download("link0000001")


def test_claim_race_between_threads(store: SQLiteStore) -> None:
    """Twenty threads racing for a limit of 5 get exactly 5 downloads."""
    store.add_link(make_link(max_downloads=5))
    start = threading.Barrier(20)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        for _ in range(3):
            won = store.claim_download("link0000001")
            with lock:
                results.append(won)

    threads = [threading.Thread(target=race) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 5
    link = store.get_link("link0000001")
    assert link is not None and link.downloads == 5


def _claim_in_process(
    db: Path, start: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[int]
) -> None:
    store = SQLiteStore(db)  # a connection of its own: never share one across fork
    start.wait()
    out.put(sum(store.claim_download("link0000001") for _ in range(10)))
    store.close()


def test_claim_race_between_processes(store: SQLiteStore, db: Path) -> None:
    """Four processes racing for a limit of 5 get exactly 5 downloads between them."""
    store.add_link(make_link(max_downloads=5))
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_claim_in_process, args=(db, start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    won = sum(out.get(timeout=30) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert won == 5
    link = store.get_link("link0000001")
    assert link is not None and link.downloads == 5


def test_events_newest_first(store: SQLiteStore) -> None:
    """The log lists events newest first, filtered by link and limited on request."""
    store.add_event(event("a", NOW + 1))
    store.add_event(event("b", NOW + 2, status=410))
    store.add_event(event("a", NOW + 3))
    assert [e.at for e in store.list_events()] == [NOW + 3, NOW + 2, NOW + 1]
    assert [e.at for e in store.list_events("a")] == [NOW + 3, NOW + 1]
    assert store.list_events(limit=1) == [event("a", NOW + 3)]
    assert store.list_events("b") == [event("b", NOW + 2, status=410)]
    assert store.list_events("none") == []


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///rel/here.db", "rel/here.db"), ("sqlite:////{tmp}/abs.db", "{tmp}/abs.db")],
)
def test_open_store_sqlite(tmp_path: Path, url: str, path: str) -> None:
    """sqlite:///relative and sqlite:////absolute URLs open an SQLite file there."""
    store = open_store(url.format(tmp=str(tmp_path).lstrip("/")))
    assert isinstance(store, SQLiteStore)
    assert store.path.resolve() == (tmp_path / path.format(tmp=tmp_path)).resolve()
    store.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "postgres://db/x", "nonsense"])
def test_open_store_refuses(url: str) -> None:
    """An unusable store URL is a ConfigError naming SESAME_STORE_URL."""
    with pytest.raises(ConfigError, match="SESAME_STORE_URL"):
        open_store(url)
