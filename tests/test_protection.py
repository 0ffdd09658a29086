"""Bandwidth protection in-process, on a frozen clock: the concurrency cap, the per-client
rate limit and the daily egress budget. Each test fails if its protection is removed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame.bandwidth import DAY
from sesame.downloads import Download
from sesame.service import Service
from tests.support import T0, FakeClock, make_settings, take, write_files

BODY = bytes(range(256)) * 40  # 10 KiB
JSON = {"accept": "application/json"}


Make = Callable[..., tuple[Service, TestClient]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Make]:
    """Builds a service and an in-process client with the given settings."""
    built: list[Service] = []

    def build(**options: Any) -> tuple[Service, TestClient]:
        files = write_files(tmp_path / "files", {"data.bin": BODY})
        settings = make_settings(tmp_path, files_dir=files, **options)
        service = Service.from_settings(settings, clock=clock)
        built.append(service)
        return service, TestClient(create_app(settings, service))

    yield build
    for service in built:
        service.store.close()


def path_of(service: Service, **options: Any) -> tuple[str, str]:
    shared = service.share("data.bin", **options)
    return shared.link.id, shared.url.removeprefix(service.settings.public_url)


def another_download(service: Service) -> Download:
    """A download in flight of another link, as if at another gateway."""
    return take(service, service.share("data.bin").link, len(BODY), settled=False)


def test_over_the_concurrency_cap_is_503_and_takes_nothing(make: Make) -> None:
    """With every place taken, a download gets 503 with Retry-After and a bilingual page,
    and its one-time link keeps its download; once a place is free it downloads."""
    service, client = make(max_concurrent_downloads=1)
    link_id, path = path_of(service, max_downloads=1)
    held = another_download(service)
    response = client.get(path)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "服务器正忙" in response.text and "The server is busy" in response.text
    answer = client.get(path, headers=JSON)
    assert answer.status_code == 503 and answer.json()["error"] == "busy"
    assert answer.json()["retry_after"] == int(answer.headers["retry-after"])
    assert service.link(link_id).link.downloads == 0
    assert service.downloads.usage().today == len(BODY)  # the other's: nothing reserved here
    refused = service.events(link_id)
    assert [(e.status, e.outcome, e.counted) for e in refused] == [(503, "refused", False)] * 2
    held.finish(0, False)
    assert client.get(path).content == BODY


def test_a_finished_download_frees_its_place(make: Make) -> None:
    """Downloads one after another never hit a cap of one: each gives its place back."""
    service, client = make(max_concurrent_downloads=1)
    _, path = path_of(service)
    for _ in range(3):
        assert client.get(path).status_code == 200
    assert service.downloads.usage().downloads == 0


def test_a_crashed_gateways_place_lapses(make: Make, clock: FakeClock) -> None:
    """A place whose gateway stopped renewing it is free again once its lease lapses."""
    service, client = make(max_concurrent_downloads=1)
    _, path = path_of(service)
    another_download(service)
    assert client.get(path).status_code == 503
    clock.now += 300  # the lease is 30 s; the link lives 10 min
    assert client.get(path).status_code == 200


def test_a_client_over_the_rate_limit_gets_429(make: Make) -> None:
    """SESAME_RATE_LIMIT=3/minute: the fourth request from one address is 429 with
    Retry-After; without the setting there is no limit."""
    service, client = make(rate_limit="3/minute")
    _, path = path_of(service)
    for _ in range(3):
        assert client.head(path).status_code == 200
    refused = client.get(path)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert "Too many requests" in refused.text
    assert client.get(path, headers=JSON).json()["error"] == "rate_limited"
    unlimited, free_client = make()
    _, other = path_of(unlimited)
    assert all(free_client.head(other).status_code == 200 for _ in range(10))


def test_a_spent_budget_is_503_with_the_reset_time(make: Make) -> None:
    """SESAME_DAILY_EGRESS=25KiB and a 10 KiB file: two downloads fit, the third gets 503
    with Retry-After and a page saying the budget resets at midnight UTC, 16 h from now."""
    service, client = make(daily_egress="25KiB")
    link_id, path = path_of(service)
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200
    refused = client.get(path)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) == 16 * 3600
    assert "2027-01-16 00:00" in refused.text and "16 h 0 min" in refused.text
    assert "今日下载流量已用完" in refused.text
    body = client.get(path, headers=JSON).json()
    assert body["error"] == "budget" and body["resets_at"] == "2027-01-16T00:00:00+00:00"
    assert service.link(link_id).link.downloads == 2
    assert service.downloads.usage().today == 2 * len(BODY)


def test_a_part_reserves_only_its_bytes_against_the_budget(make: Make) -> None:
    """Every request must fit in what is left of the day's budget, but a part reserves only
    its own bytes: the rest of a download fits where a whole download does not; once spent,
    parts are refused too (ranges cannot get around the budget)."""
    service, client = make(daily_egress="25KiB")
    _, path = path_of(service)
    client.get(path)
    client.get(path)
    assert client.get(path).status_code == 503
    resumed = client.get(path, headers={"range": "bytes=6000-"})
    assert resumed.status_code == 206 and resumed.content == BODY[6000:]
    assert client.get(path, headers={"range": "bytes=1-"}).status_code == 503
    assert client.get(path, headers={"range": "bytes=0-0,2-"}).status_code == 503


def test_the_budget_resets_the_next_utc_day(make: Make, clock: FakeClock) -> None:
    """At midnight UTC the budget starts afresh; yesterday stays in the history."""
    service, client = make(daily_egress="10KiB")
    _, path = path_of(service, lifetime="2d")
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 503
    clock.now = (T0 // DAY + 1) * DAY
    assert client.get(path).status_code == 200
    usage = service.downloads.usage()
    assert usage.today == len(BODY) and usage.budget == 10 * 1024
    assert [n for _, n in usage.per_day[-2:]] == [len(BODY), len(BODY)]
    assert len(usage.per_day) == 30


def test_an_aborted_download_gives_its_bytes_back(make: Make) -> None:
    """Only bytes really sent count against the budget: a refused Range answer (416)
    gives back what it reserved."""
    service, client = make(daily_egress="1MiB")
    _, path = path_of(service)
    assert client.get(path, headers={"range": "bytes=99999-"}).status_code == 416
    assert service.downloads.usage().today == 0


def test_the_rate_limit_is_shared_through_redis(make: Make, redis_url: str) -> None:
    """With a Redis store, requests at one gateway count at another."""
    service, first = make(rate_limit="2/minute", store_url=redis_url)
    second = TestClient(create_app(service.settings, service))
    _, path = path_of(service)
    assert [first.head(path).status_code for _ in range(2)] == [200, 200]
    assert second.head(path).status_code == 429
    service.store.close()


def test_offloaded_downloads_free_their_place_and_hand_nginx_the_speed_cap(make: Make) -> None:
    """In offload mode a download is settled when handed to nginx: its place among those in
    flight is freed at once, and a capped link tells nginx its rate (X-Accel-Limit-Rate)."""
    service, client = make(offload="nginx", max_concurrent_downloads=1)
    capped = service.share("data.bin", rate="4KiB").url.removeprefix(service.settings.public_url)
    plain = service.share("data.bin").url.removeprefix(service.settings.public_url)
    first = client.get(capped)
    assert first.headers["x-accel-limit-rate"] == "4096"
    assert service.downloads.usage().downloads == 0
    second = client.get(plain)
    assert second.status_code == 200 and "x-accel-limit-rate" not in second.headers
