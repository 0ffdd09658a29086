"""The contract every store keeps, run against SQLite and a real redis-server alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesame.models import DownloadEvent, Link, Outcome
from sesame.store import Store, open_store
from tests.servers import redis_server

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}", retention=86400)
    else:
        opened = open_store(request.getfixturevalue("redis_url"), retention=86400)
        opened.redis.flushdb()  # type: ignore[attr-defined]
    yield opened
    opened.close()


def link(link_id: str = "L1", max_downloads: int | None = None, created: int = NOW) -> Link:
    return Link(link_id, "a.txt", created, created + 600, max_downloads, "bob", "hi")


def event(link_id: str, at: float, outcome: Outcome = Outcome.COMPLETED) -> DownloadEvent:
    return DownloadEvent(link_id, at, "127.0.0.1", "curl/8", 200, 10, outcome)


def test_a_link_comes_back_as_it_went_in(store: Store) -> None:
    """add_link then get_link returns an equal record; an unknown id gives None."""
    store.add_link(link())
    assert store.get_link("L1") == link()
    assert store.get_link("nope") is None


def test_links_are_listed_newest_first(store: Store) -> None:
    """list_links orders by creation time, newest first."""
    for number in range(3):
        store.add_link(link(f"L{number}", created=NOW + number))
    assert [item.id for item in store.list_links()] == ["L2", "L1", "L0"]


def test_revoking_keeps_the_first_time(store: Store) -> None:
    """revoke_link sets revoked_at once; revoking again keeps it; unknown ids give None."""
    store.add_link(link())
    assert store.revoke_link("L1", NOW + 5).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.revoke_link("L1", NOW + 9).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.revoke_link("nope", NOW) is None


def test_counted_downloads_stop_at_the_limit(store: Store) -> None:
    """begin_download takes downloads up to max_downloads and then refuses."""
    store.add_link(link(max_downloads=2))
    results = [store.begin_download("L1", NOW, 10, True, None) for _ in range(3)]
    assert results == [True, True, False]
    assert store.get_link("L1").downloads == 2  # type: ignore[union-attr]


def test_uncounted_downloads_pass_a_used_up_link(store: Store) -> None:
    """A resumption (counted=False) is not stopped by the download limit."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download("L1", NOW, 10, True, None)
    assert store.begin_download("L1", NOW, 10, False, None)
    assert store.get_link("L1").downloads == 1  # type: ignore[union-attr]


def test_revoked_or_unknown_links_begin_nothing(store: Store) -> None:
    """begin_download refuses a revoked link and an unknown id, changing nothing."""
    store.add_link(link())
    store.revoke_link("L1", NOW)
    assert not store.begin_download("L1", NOW, 10, True, None)
    assert not store.begin_download("nope", NOW, 10, True, None)
    assert store.get_link("L1").downloads == 0  # type: ignore[union-attr]


def test_the_byte_cap_holds(store: Store) -> None:
    """bytes_served never passes byte_cap; a refused begin reserves nothing."""
    store.add_link(link())
    assert store.begin_download("L1", NOW, 60, False, 100)
    assert not store.begin_download("L1", NOW, 50, False, 100)
    assert store.begin_download("L1", NOW, 40, False, 100)
    assert store.get_link("L1").bytes_served == 100  # type: ignore[union-attr]


def test_the_first_start_is_remembered(store: Store) -> None:
    """started_at is set by the first begin_download and kept afterwards."""
    store.add_link(link())
    store.begin_download("L1", NOW + 3, 1, True, None)
    store.begin_download("L1", NOW + 7, 1, True, None)
    assert store.get_link("L1").started_at == NOW + 3  # type: ignore[union-attr]


def test_ending_settles_bytes_and_gives_back(store: Store) -> None:
    """end_download returns unsent bytes and, with uncount, the download; never below 0."""
    store.add_link(link(max_downloads=1))
    store.begin_download("L1", NOW, 100, True, None)
    store.end_download("L1", -70, uncount=True)
    record = store.get_link("L1")
    assert (record.downloads, record.bytes_served) == (0, 30)  # type: ignore[union-attr]
    store.end_download("L1", -500, uncount=True)
    record = store.get_link("L1")
    assert (record.downloads, record.bytes_served) == (0, 0)  # type: ignore[union-attr]


def test_racing_threads_never_pass_the_limit(store: Store) -> None:
    """Forty threads racing for a limit of five get exactly five downloads."""
    store.add_link(link(max_downloads=5))
    wins: list[bool] = []
    barrier = threading.Barrier(40)

    def race() -> None:
        barrier.wait()
        wins.append(store.begin_download("L1", NOW, 1, True, None))

    threads = [threading.Thread(target=race) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 5
    assert store.get_link("L1").downloads == 5  # type: ignore[union-attr]


def test_events_are_listed_newest_first(store: Store) -> None:
    """list_events gives every row newest first, by link and with a limit."""
    store.add_link(link("A"))
    store.add_link(link("B"))
    for number in range(4):
        store.add_event(event("A" if number % 2 else "B", NOW + number))
    assert [e.at for e in store.list_events()] == [NOW + 3, NOW + 2, NOW + 1, NOW]
    assert [e.at for e in store.list_events("A")] == [NOW + 3, NOW + 1]
    assert [e.at for e in store.list_events(limit=1)] == [NOW + 3]
    assert store.list_events()[0] == event("A", NOW + 3)
