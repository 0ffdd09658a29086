"""Offload mode: the gateway decides, a real nginx with deploy/nginx.conf sends the file."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from bench.nginx import offload_server, running_nginx
from gateway.app import create_app
from sesame.models import Outcome
from sesame.service import Service
from sesame.settings import Settings, load_settings
from tests.support import KEY, SAMPLES, free_port, require_binary, running_gateway, sesame_env

BIG = os.urandom(2 * 1024 * 1024 + 17)


@dataclass(frozen=True)
class Front:
    """nginx in front of a gateway in offload mode, and a Service on the same state."""

    url: str
    service: Service


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """A gateway with SESAME_OFFLOAD=nginx behind nginx, both on free loopback ports."""
    nginx = require_binary("nginx")
    home = tmp_path_factory.mktemp("offload")
    files = home / "files"
    for name, body in {**SAMPLES, "big.bin": BIG}.items():
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        (files / name).write_bytes(body)
    gateway_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    values = {"secret_keys": KEY, "files_dir": str(files), "data_dir": str(home / "data")}
    env = sesame_env(**values, public_url=url, offload="nginx")
    service = Service.from_settings(load_settings(**values, public_url=url, _env_file=None))
    server = offload_server(port, gateway_port, files)
    with (
        running_gateway(env, home / "gateway.log", gateway_port),
        running_nginx(nginx, home / "nginx", server, port),
    ):
        yield Front(url, service)
    service.store.close()


def counted(front: Front, link_id: str) -> int:
    link = front.service.store.get_link(link_id)
    assert link is not None
    return link.downloads


def test_download_through_nginx(front: Front) -> None:
    """nginx sends the right bytes under the real name, with the gateway's safety headers."""
    link = front.service.share("芝麻 开门.txt")
    response = httpx.get(link.url)
    assert response.status_code == 200
    assert response.content == SAMPLES["芝麻 开门.txt"]
    assert response.headers["server"].startswith("nginx")
    assert response.headers["content-disposition"] == (
        'attachment; filename="ZhiMa KaiMen.txt"; '
        "filename*=UTF-8''%E8%8A%9D%E9%BA%BB%20%E5%BC%80%E9%97%A8.txt"
    )
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert "no-store" in response.headers["cache-control"]
    assert "etag" in response.headers
    assert "x-accel-redirect" not in response.headers


def test_range_through_nginx(front: Front) -> None:
    """nginx answers a Range with 206 and those bytes; a resume takes no download."""
    link = front.service.share("big.bin", max_downloads=1)
    response = httpx.get(link.url, headers={"Range": "bytes=1000-1999"})
    assert response.status_code == 206
    assert response.content == BIG[1000:2000]
    assert response.headers["content-range"] == f"bytes 1000-1999/{len(BIG)}"
    assert counted(front, link.link.id) == 0


def test_full_get_counts_when_handed_to_nginx(front: Front) -> None:
    """A FULL GET takes the download when nginx is told to send it; then the link is used up,
    while a piece short of the end is still served."""
    link = front.service.share("big.bin", max_downloads=1)
    with httpx.stream("GET", link.url) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # walk away after the first chunk
    assert counted(front, link.link.id) == 1  # nginx's aborts are not seen by the gateway
    assert httpx.get(link.url).status_code == 410
    resumed = httpx.get(link.url, headers={"Range": "bytes=0-9"})
    assert resumed.status_code == 206
    assert resumed.content == BIG[:10]
    outcomes = [e.outcome for e in front.service.store.list_events(link.link.id)]
    assert outcomes == [Outcome.COMPLETED, Outcome.REFUSED, Outcome.COMPLETED]


def test_head_through_nginx_is_free(front: Front) -> None:
    """HEAD through nginx gives the size and takes no download."""
    link = front.service.share("hello.txt", max_downloads=1)
    response = httpx.head(link.url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(SAMPLES["hello.txt"]))
    assert counted(front, link.link.id) == 0


def test_internal_location_is_not_a_url(front: Front) -> None:
    """The files are reachable only through a link, never at nginx's internal location."""
    assert httpx.get(f"{front.url}/_sesame/files/hello.txt").status_code == 404


def test_bad_link_never_reaches_the_files(front: Front) -> None:
    """A forged token is refused by the gateway; nginx passes its 404 on."""
    assert httpx.get(f"{front.url}/d/forged").status_code == 404


def test_gateway_answers_with_accel_redirect(settings: Settings, service: Service) -> None:
    """In process: the gateway's answer is empty, with the percent-encoded internal path."""
    offload = settings.model_copy(update={"offload": "nginx"})
    service.settings = offload
    url = service.share("sub/nested.bin").url.removeprefix(settings.public_url)
    with TestClient(create_app(offload, service)) as client:
        response = client.get(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-accel-redirect"] == "/_sesame/whole/sub/nested.bin"
    assert response.headers["content-disposition"].startswith('attachment; filename="nested.bin"')


HUGE = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def reporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """As ``front``, with nginx reporting each download back (SESAME_OFFLOAD_REPORT)."""
    nginx = require_binary("nginx")
    home = tmp_path_factory.mktemp("reporting")
    files = home / "files"
    files.mkdir()
    (files / "big.bin").write_bytes(BIG)
    (files / "huge.bin").write_bytes(os.urandom(HUGE))
    gateway_port, port, report_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    values = {"secret_keys": KEY, "files_dir": str(files), "data_dir": str(home / "data")}
    report = f"127.0.0.1:{report_port}"
    env = sesame_env(**values, public_url=url, offload="nginx", offload_report=report)
    service = Service.from_settings(load_settings(**values, public_url=url, _env_file=None))
    server = offload_server(port, gateway_port, files, report_port)
    with (
        running_gateway(env, home / "gateway.log", gateway_port),
        running_nginx(nginx, home / "nginx", server, port),
    ):
        yield Front(url, service)
    service.store.close()


def settled(front: Front, link_id: str) -> list[Outcome]:
    """The outcomes logged for a link, once nginx's report has come."""
    deadline = time.monotonic() + 10
    while not (events := front.service.store.list_events(link_id)):
        assert time.monotonic() < deadline, "nginx's report never came"
        time.sleep(0.05)  # polling for another process's datagram
    return [event.outcome for event in events]


def test_nginx_reports_a_whole_download(reporting: Front) -> None:
    """A download nginx sent in full counts once, logged completed with its bytes; the
    download's id never reaches the client."""
    link = reporting.service.share("big.bin", max_downloads=1)
    response = httpx.get(link.url)
    assert response.content == BIG
    assert "x-sesame-download" not in response.headers
    assert settled(reporting, link.link.id) == [Outcome.COMPLETED]
    assert counted(reporting, link.link.id) == 1
    assert httpx.get(link.url).status_code == 410


def test_nginx_reports_a_cancelled_download_which_is_given_back(reporting: Front) -> None:
    """A recipient who walks away early from a download nginx sends leaves the one-time
    link usable: nginx says the body was not completed, the gateway gives it back."""
    link = reporting.service.share("huge.bin", max_downloads=1)
    parts = urlsplit(link.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = 0
        while got < 1024 * 1024:
            got += len(sock.recv(65536))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert settled(reporting, link.link.id) == [Outcome.ABORTED]
    assert counted(reporting, link.link.id) == 0
    assert len(httpx.get(link.url, timeout=60).content) == HUGE


@pytest.mark.parametrize(
    "header", ["bytes =0-0", ",".join(["bytes=0-0"] * 17), "bytes=0-1000000,0-1000000,0-1000000"]
)
def test_ranges_nginx_would_read_otherwise_count_as_the_whole(front: Front, header: str) -> None:
    """A Range nginx could read otherwise than the gateway (spacing, many ranges, overlaps)
    is planned as the whole file: the one-time link is used up by it, not bypassed."""
    link = front.service.share("big.bin", max_downloads=1)
    response = httpx.get(link.url, headers={"Range": header})
    assert response.status_code == 200 and response.content == BIG
    assert counted(front, link.link.id) == 1
    assert httpx.get(link.url, headers={"Range": header}).status_code == 410
