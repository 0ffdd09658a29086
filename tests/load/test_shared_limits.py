"""Limits that hold across processes: real gateways on loopback, real sockets, real stores."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from sesame.models import Link, Outcome
from sesame.service import Service
from tests.support import KEY, make_settings, running_gateway, sesame_env

pytestmark = pytest.mark.e2e

SMALL = bytes(range(256)) * 256  # 64 KiB
LARGE_SIZE = 48 * 1024 * 1024


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        yield request.getfixturevalue("redis_url")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "small.bin").write_bytes(SMALL)
    with (folder / "large.bin").open("wb") as handle:
        handle.truncate(LARGE_SIZE)
    return folder


@pytest.fixture
def service(tmp_path: Path, files: Path, store_url: str) -> Iterator[Service]:
    built = Service.from_settings(make_settings(tmp_path, files_dir=files, store_url=store_url))
    yield built
    built.store.close()


@pytest.fixture
def gateways(service: Service, tmp_path: Path) -> Iterator[list[str]]:
    """Two gateway processes sharing the service's store."""
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(service.settings.files_dir),
        data_dir=str(tmp_path / "state"),
        store_url=service.settings.resolved_store_url,
    )
    with ExitStack() as stack:
        yield [stack.enter_context(running_gateway(env, tmp_path / f"gw{n}.log")) for n in range(2)]


def token_path(url: str) -> str:
    return urlsplit(url).path


async def _fetch_all(urls: list[str]) -> list[tuple[int, bytes]]:
    limits = httpx.Limits(max_connections=len(urls))
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def fetch(url: str) -> tuple[int, bytes]:
            response = await client.get(url)
            return response.status_code, response.content

        return await asyncio.gather(*(fetch(url) for url in urls))


def _wait_for(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_200_concurrent_gets_over_two_gateways_take_exactly_five(
    service: Service, gateways: list[str]
) -> None:
    """200 racing GETs at a 5-download link, split over two processes: five 200s, 195 410s."""
    shared = service.share("small.bin", max_downloads=5)
    path = token_path(shared.url)
    urls = [gateways[n % 2] + path for n in range(200)]
    results = asyncio.run(_fetch_all(urls))
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 5, 410: 195}
    assert all(body == SMALL for status, body in results if status == 200)
    _wait_for(lambda: len(service.events(shared.link.id)) == 200)
    assert service.link(shared.link.id).link.downloads == 5
    outcomes = Counter(event.outcome for event in service.events(shared.link.id))
    assert outcomes == {Outcome.COMPLETED: 5, Outcome.REFUSED: 195}


def _read_half_and_hang_up(base: str, path: str) -> int:
    host, port = urlsplit(base).hostname, urlsplit(base).port
    received = 0
    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        while received < LARGE_SIZE // 2:
            chunk = sock.recv(1 << 20)
            assert chunk, "the gateway closed the connection early"
            received += len(chunk)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return received


def test_an_aborted_download_does_not_use_up_a_one_time_link(
    service: Service, gateways: list[str]
) -> None:
    """A client that hangs up halfway gets its download back; the next one completes."""
    shared = service.share("large.bin", max_downloads=1)
    path = token_path(shared.url)
    _read_half_and_hang_up(gateways[0], path)
    _wait_for(lambda: any(e.outcome is Outcome.ABORTED for e in service.events(shared.link.id)))
    aborted = service.events(shared.link.id)[0]
    assert 0 < aborted.bytes_sent < LARGE_SIZE
    assert service.link(shared.link.id).link.downloads == 0
    with httpx.stream("GET", gateways[1] + path, timeout=60) as response:
        assert response.status_code == 200
        assert sum(len(chunk) for chunk in response.iter_bytes()) == LARGE_SIZE
    assert httpx.get(gateways[0] + path).status_code == 410


def test_a_download_resumes_after_expiry_within_grace(
    service: Service, gateways: list[str]
) -> None:
    """A link that expired while its download was under way still serves the rest."""
    now = int(time.time())
    # A ten-minute link made 11 minutes ago whose download began in its 9th minute.
    link = Link("resumeMe001", "small.bin", now - 660, now - 60, 1, started_at=now - 120)
    service.store.add_link(link)
    path = token_path(service.shared(link).url)
    resumed = httpx.get(gateways[0] + path, headers={"range": "bytes=1000-"})
    assert resumed.status_code == 206 and resumed.content == SMALL[1000:]
    assert httpx.get(gateways[1] + path).status_code == 410
