"""Retention: a link, its log rows and its issue record go SESAME_RETENTION after the link
ended, on SQLite and a real redis-server; bytes per day stay; a process sweeps at most once
per interval, and the gateway sweeps from its own thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame import retention as retention_module
from sesame.errors import StoreUnavailable
from sesame.models import DownloadEnd, DownloadEvent, Link, Outcome
from sesame.retention import Periodic, Retention
from sesame.service import Service
from sesame.settings import Settings
from sesame.store import Store, open_store
from tests.support import FakeClock

NOW = 1_800_000_000  # in the future of the real clock, so that Redis keeps every record
DAY = 86400
KEEP = DAY


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}", retention=KEEP)
    else:
        opened = open_store(request.getfixturevalue("redis_url"), retention=KEEP)
    yield opened
    opened.close()


def link(link_id: str, created: int, lifetime: int, revoked: int | None = None) -> Link:
    return Link(link_id, "a.txt", created, created + lifetime, revoked_at=revoked)


def row(link_id: str, at: float) -> DownloadEvent:
    return DownloadEvent(link_id, at, "127.0.0.1", "curl/8", 200, 10, Outcome.COMPLETED, True)


# id: (created, lifetime, revoked), and whether retention keeps it at NOW
LINKS = {
    "live": ((NOW - 60, 600, None), True),
    "ended-lately": ((NOW - 700, 600, None), True),  # expired 100 s ago
    "ended-long-ago": ((NOW - 3 * DAY, 600, None), False),
    "revoked-long-ago": ((NOW - 3 * DAY, 7 * DAY, NOW - 2 * DAY), False),  # not yet expired
    "revoked-lately": ((NOW - 3 * DAY, 7 * DAY, NOW - 100), True),
}


def fill(store: Store) -> None:
    """LINKS, three log rows each, an issue record for one to go, and bytes on old days."""
    for link_id, ((created, lifetime, revoked), _) in LINKS.items():
        store.add_link(link(link_id, created, lifetime, revoked))
        for n in range(3):
            store.add_event(row(link_id, created + n))
    store.issue_link("kw", "openid", link("issued-old", NOW - 3 * DAY, 600), 60)
    for day in range(NOW // DAY - 40, NOW // DAY + 1):
        store.end_download(DownloadEnd("live", 5, False, day, "", None))


def test_retention_drops_exactly_what_ended_that_long_ago(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links that ended more than SESAME_RETENTION ago go with their log rows, in batches
    smaller than what there is; the others, their rows, and every day's bytes stay."""
    monkeypatch.setattr(retention_module, "BATCH", 2)
    fill(store)
    dropped = Retention(store, KEEP, FakeClock(NOW)).sweep()
    kept = sorted(link_id for link_id, (_, keep) in LINKS.items() if keep)
    assert dropped == len(LINKS) - len(kept) + 1  # and issued-old
    assert sorted(item.id for item in store.list_links()) == kept
    assert sorted({event.link_id for event in store.list_events()}) == kept
    assert len(store.list_events()) == 3 * len(kept)
    assert store.list_events("ended-long-ago") == []
    assert store.get_link("ended-long-ago") is None
    assert len(store.egress(NOW // DAY - 40, NOW // DAY)) == 41


def test_a_dropped_issue_gives_a_new_link(store: Store) -> None:
    """Once the link a recipient was issued is forgotten, asking again gives a new one."""
    store.issue_link("kw", "openid", link("issued-old", NOW - 3 * DAY, 600), 10 * DAY)
    Retention(store, KEEP, FakeClock(NOW)).sweep()
    again = store.issue_link("kw", "openid", link("issued-new", NOW, 600), 10 * DAY)
    assert again.id == "issued-new"


def test_a_process_sweeps_at_most_once_per_interval(store: Store) -> None:
    """sweep_if_due sweeps, then not again until the interval has passed."""
    clock = FakeClock(NOW)
    retention = Retention(store, KEEP, clock, interval=3600)
    store.add_link(link("first", NOW - 3 * DAY, 600))
    assert retention.sweep_if_due() == 1
    store.add_link(link("second", NOW - 3 * DAY, 600))
    clock.advance(3599)
    assert retention.sweep_if_due() is None
    assert store.get_link("second") is not None
    clock.advance(1)
    assert retention.sweep_if_due() == 1


def test_the_gateway_sweeps_when_it_starts(settings: Settings) -> None:
    """A gateway's lifespan sweeps at startup, from a thread of its own, and stops at
    shutdown."""
    service = Service.from_settings(settings, clock=FakeClock(NOW))
    service.store.add_link(link("ended-long-ago", NOW - 60 * DAY, 600))
    service.store.add_link(link("live", NOW - 60, 600))
    with TestClient(create_app(settings, service)) as client:
        assert client.get("/healthz").status_code == 200
    for thread in threading.enumerate():
        if thread.name == "sesame-retention":
            thread.join(timeout=10)
            assert not thread.is_alive()
    assert [item.id for item in service.store.list_links()] == ["live"]
    service.store.close()


def test_a_sweep_the_store_cannot_do_is_one_line_a_fault_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store that is locked or down makes a sweep fail as often as it is tried: the log gets
    one line saying why, not a traceback each time; a fault of the sweep's own keeps its."""

    class Failing(Periodic):
        what = "test sweep"

        def __init__(self, error: Exception) -> None:
            super().__init__(lambda: 0.0, 60)
            self.error = error

        def sweep(self) -> int:
            raise self.error

    with caplog.at_level(logging.WARNING, logger="sesame"):
        Failing(StoreUnavailable("drop_ended", "database is locked")).sweep_quietly()
        Failing(KeyError("a bug")).sweep_quietly()
    locked, fault = caplog.records
    assert locked.getMessage() == (
        "test sweep: the sweep failed (database is locked); it is tried again later"
    )
    assert locked.exc_info is None
    assert fault.exc_info is not None and fault.exc_info[0] is KeyError
