"""What only the SQLite store shows; every store's contract is in store/test_contract.py."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from secrets import token_hex

import pytest

from sesame.errors import ConfigError
from sesame.models import DownloadEnd, DownloadEvent, DownloadStart, Link, Outcome
from sesame.store import open_store
from sesame.store.sqlite import SQLiteStore
from tests.support import NOW


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


def counted_start(slot_id: str) -> DownloadStart:
    """A counted download of one byte of make_link(), with no budget and no cap."""
    row = DownloadEvent("link0000001", NOW, None, None, 200, 1, Outcome.COMPLETED, True)
    return DownloadStart(
        "link0000001", NOW, 1, True, None, NOW // 86400, None, slot_id, NOW + 60, None, row
    )


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


def _begin_in_process(
    db: Path, start: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[int]
) -> None:
    store = SQLiteStore(db)  # a connection of its own: never share one across fork
    start.wait()
    asks = [counted_start(token_hex(8)) for _ in range(10)]
    out.put(sum(store.begin_download(ask) is None for ask in asks))
    store.close()


def test_claim_race_between_processes(store: SQLiteStore, db: Path) -> None:
    """Four processes racing for a limit of 5 get exactly 5 downloads between them."""
    store.add_link(make_link(max_downloads=5))
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_begin_in_process, args=(db, start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    won = sum(out.get(timeout=30) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert won == 5
    link = store.get_link("link0000001")
    assert link is not None and link.downloads == 5


def test_a_download_is_one_transaction_each_way(store: SQLiteStore) -> None:
    """begin_download and end_download are each one transaction; an end with nothing to
    settle writes neither the link nor the day's bytes."""
    store.add_link(make_link())
    began: list[str] = []
    store._db.set_trace_callback(began.append)
    assert store.begin_download(counted_start("s")) is None
    ended: list[str] = []
    store._db.set_trace_callback(ended.append)
    row = DownloadEvent("link0000001", NOW, None, None, 200, 1, Outcome.COMPLETED, True)
    store.end_download(DownloadEnd("link0000001", 0, False, NOW // 86400, "s", row, None, True))
    for trip in (began, ended):
        assert (trip[0], trip[-1], trip.count("COMMIT")) == ("BEGIN IMMEDIATE", "COMMIT", 1)
    assert not [statement for statement in ended if "links" in statement or "egress" in statement]


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///rel/here.db", "rel/here.db"), ("sqlite:////{tmp}/abs.db", "{tmp}/abs.db")],
)
def test_open_store_sqlite(tmp_path: Path, url: str, path: str) -> None:
    """sqlite:///relative and sqlite:////absolute URLs open an SQLite file there."""
    store = open_store(url.format(tmp=str(tmp_path).lstrip("/")), retention=60)
    assert isinstance(store, SQLiteStore)
    assert store.path.resolve() == (tmp_path / path.format(tmp=tmp_path)).resolve()
    store.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "postgres://db/x", "nonsense"])
def test_open_store_refuses(url: str) -> None:
    """An unusable store URL is a ConfigError naming SESAME_STORE_URL."""
    with pytest.raises(ConfigError, match="SESAME_STORE_URL"):
        open_store(url, retention=60)


def test_a_key_seen_once_lapses_with_its_ttl(store: SQLiteStore) -> None:
    """A key remembered with seen_once may be offered again once ``now`` is past its ttl."""
    assert store.seen_once("n", NOW, 300)
    assert not store.seen_once("n", NOW + 300, 300)
    assert store.seen_once("n", NOW + 301, 300)
