"""A link's limits against any client, on a real gateway over loopback, both as the Procfile
starts it (zero-copy) and under plain uvicorn: hostile Range headers one by one and thirty at
once, recipients who cancel, real download clients, a gateway killed mid-download, a slow
reader, a locked database."""

from __future__ import annotations

import os
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from sesame.models import Outcome
from sesame.service import Service
from sesame.settings import Settings
from tests.support import (
    KEY,
    SESAME_OPTIONS,
    listening_on,
    make_settings,
    require_binary,
    running_gateway,
    sesame_env,
)

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
SIZES = {"48k.bin": 48 * 1024, "1.8m.bin": 1_800_000, "5m.bin": 5 * MIB, "50m.bin": 50 * MIB}
BIG = "8m.bin"
PLAIN_UVICORN = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")


@dataclass(frozen=True)
class Gateway:
    url: str
    service: Service
    files: Path
    log: Path

    def link(self, file: str = BIG, max_downloads: int | None = 1) -> tuple[str, str]:
        """A new link's id and URL."""
        shared = self.service.share(file, max_downloads=max_downloads)
        return shared.link.id, self.url + urlsplit(shared.url).path

    def record(self, link_id: str) -> tuple[int, int]:
        """The link's downloads and bytes served."""
        link = self.service.link(link_id).link
        return link.downloads, link.bytes_served


def home_with_files(home: Path) -> tuple[Path, Settings]:
    files = home / "files"
    files.mkdir()
    for name, size in {**SIZES, BIG: 8 * MIB}.items():
        (files / name).write_bytes(os.urandom(size))
    return files, make_settings(home, files_dir=files)


def gateway_env(home: Path, settings: Settings, **extra: str) -> dict[str, str]:
    return sesame_env(
        secret_keys=KEY,
        files_dir=str(settings.files_dir),
        data_dir=str(home / "data"),
        store_url=settings.resolved_store_url,
        **extra,
    )


@pytest.fixture(scope="module", params=["procfile", "plain-uvicorn"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp(request.param)
    files, settings = home_with_files(home)
    service = Service.from_settings(settings)
    options = SESAME_OPTIONS if request.param == "procfile" else PLAIN_UVICORN
    log = home / "gateway.log"
    with running_gateway(gateway_env(home, settings), log, options=options) as url:
        yield Gateway(url, service, files, log)
    service.store.close()
    assert "Traceback" not in log.read_text()


def received(url: str, headers: dict[str, str]) -> tuple[int, int]:
    """The status and the body's length of a GET."""
    response = httpx.get(url, headers=headers, timeout=60)
    return response.status_code, len(response.content)


def hostile_headers(size: int) -> list[dict[str, str]]:
    """The Range forms that once took a whole file through a free "resume"."""
    return [
        {"Range": "bytes=5-", "If-Range": '"x"'},
        {"Range": "bytes=5-,0-4"},
        {"Range": "bytes=1-,0-0"},
        {"Range": f"bytes={size - 1}-,0-"},
        {"Range": "bytes=" + ",".join(["1-1"] * 101)},
        {"Range": "bytes=-999999999"},
        {"Range": "bytes=0-,0-,0-,0-"},
        {"Range": "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 40, 2))},
    ]


def test_no_range_form_gets_more_than_the_link_allows(gateway: Gateway) -> None:
    """A one-time link asked every hostile Range form, three times over, serves at most
    twice its file and counts at most once; its record agrees with what went out."""
    size = 8 * MIB
    link_id, url = gateway.link()
    total = 0
    for headers in hostile_headers(size) * 3:
        status, length = received(url, headers)
        assert status in (200, 206, 410, 416)
        total += length if status in (200, 206) else 0
    downloads, served = gateway.record(link_id)
    assert downloads <= 1
    assert total <= 2 * size + 64 * 1024  # multipart answers carry their parts' headers
    assert served <= 2 * size


def test_thirty_hostile_requests_at_once_stay_under_the_cap(gateway: Gateway) -> None:
    """Thirty parallel ``bytes=S-1-,0-`` on a one-time link: at most twice the file goes out
    and at most one download is counted."""
    size = 8 * MIB
    link_id, url = gateway.link()
    headers = {"Range": f"bytes={size - 1}-,0-"}
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: received(url, headers), range(30)))
    sent = sum(length for status, length in answers if status in (200, 206))
    assert sent <= 2 * size
    downloads, served = gateway.record(link_id)
    assert downloads <= 1 and served <= 2 * size


def test_a_probe_of_the_first_byte_leaves_a_one_time_link(gateway: Gateway) -> None:
    """``bytes=0-0``, a download manager's probe, takes nothing; the download after it counts."""
    link_id, url = gateway.link()
    assert received(url, {"Range": "bytes=0-0"}) == (206, 1)
    assert gateway.record(link_id)[0] == 0
    assert received(url, {}) == (200, 8 * MIB)
    assert gateway.record(link_id)[0] == 1
    assert received(url, {})[0] == 410


def cancel_after(url: str, share: float) -> int:
    """Download through a socket with a small receive buffer, read ``share`` of the body,
    then cancel (a reset, as a closing browser tab sends); the bytes read."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a window
    sock.settimeout(30)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    got = len(head.split(b"\r\n\r\n", 1)[1])
    while got < share * length:
        got += len(sock.recv(4096))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return got


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)  # polling another process's progress


@pytest.mark.parametrize("file", sorted(SIZES))
def test_a_cancelled_download_leaves_a_one_time_link_usable(gateway: Gateway, file: str) -> None:
    """A recipient who cancels with 70 % of the body undelivered has not downloaded the
    file: the link keeps its download, the log says aborted with about what was delivered."""
    link_id, url = gateway.link(file)
    got = cancel_after(url, 0.3)
    # A kept body's row says completed as it leaves, until the abort is noticed.
    wait_for(lambda: [e.outcome for e in gateway.service.events(link_id)] == [Outcome.ABORTED])
    (event,) = gateway.service.events(link_id)
    assert event.outcome is Outcome.ABORTED and not event.counted
    assert got - 128 * 1024 <= event.bytes_sent < SIZES[file] * 0.5
    assert gateway.record(link_id)[0] == 0
    assert received(url, {}) == (200, SIZES[file])
    assert gateway.record(link_id) == (1, SIZES[file] + event.bytes_sent)


def fetch(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")


@pytest.mark.parametrize("client", ["curl", "wget", "aria2c"])
def test_real_clients_count_exactly_once(gateway: Gateway, client: str, tmp_path: Path) -> None:
    """curl, wget and aria2c with four connections each download the file whole, and each
    such download counts once (aria2c's segments are pieces of one download)."""
    binary = require_binary(client)
    link_id, url = gateway.link(max_downloads=None)
    command = {
        "curl": [binary, "-sSf", "-o", "out", url],
        "wget": [binary, "-q", "-O", "out", url],
        "aria2c": [binary, "-q", "-x4", "-s4", "--min-split-size=1M", "-o", "out", url],
    }[client]
    fetch(command, tmp_path)
    assert (tmp_path / "out").read_bytes() == (gateway.files / BIG).read_bytes()
    # The client is done; the gateway may still be settling the connections it dropped.
    wait_for(lambda: gateway.service.downloads.usage().downloads == 0)
    downloads, served = gateway.record(link_id)
    rows = [
        (e.status, e.bytes_sent, e.outcome.value, e.counted)
        for e in gateway.service.events(link_id)
    ]
    assert downloads == 1, rows
    assert served <= 2 * 8 * MIB


def slow_reader(url: str, stop: threading.Event, rate: int = 256 * 1024) -> threading.Thread:
    """A download that reads ``rate`` bytes a second until ``stop`` is set."""

    def read() -> None:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            while not stop.is_set():
                if not sock.recv(rate // 10):
                    return
                stop.wait(0.1)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


OwnGateway = Callable[..., AbstractContextManager[Gateway]]


@pytest.fixture
def own_gateway(tmp_path: Path) -> Iterator[OwnGateway]:
    """Starts gateways of the test's own, with extra settings, on one store."""
    files, settings = home_with_files(tmp_path)
    service = Service.from_settings(settings)

    @contextmanager
    def start(log_name: str = "gateway.log", **extra: str) -> Iterator[Gateway]:
        log = tmp_path / log_name
        with running_gateway(gateway_env(tmp_path, settings, **extra), log) as url:
            yield Gateway(url, service, files, log)

    yield start
    service.store.close()


def test_a_slow_reader_keeps_its_place(own_gateway: OwnGateway) -> None:
    """With room for one download and a lease of two seconds, a reader at 256 KB/s keeps
    its place for many leases: every other download meanwhile is told the server is busy."""
    with own_gateway(download_lease="2", max_concurrent_downloads="1") as gateway:
        _, url = gateway.link("50m.bin", max_downloads=None)
        stop = threading.Event()
        reader = slow_reader(url, stop)
        try:
            wait_for(lambda: gateway.service.downloads.usage().downloads == 1)
            _, other = gateway.link("5m.bin", max_downloads=None)
            deadline = time.monotonic() + 7  # three and a half leases
            while time.monotonic() < deadline:
                assert httpx.get(other, timeout=10).status_code == 503
                time.sleep(0.5)  # sampling over several leases
        finally:
            stop.set()
            reader.join()


def test_a_download_of_a_killed_gateway_is_given_back(own_gateway: OwnGateway) -> None:
    """kill -9 of the gateway mid-download: once its lease lapses, the next gateway gives the
    download back and logs it aborted, and the one-time link downloads."""
    with own_gateway("first.log", download_lease="2") as gateway:
        link_id, url = gateway.link("50m.bin")
        stop = threading.Event()
        reader = slow_reader(url, stop)
        wait_for(lambda: gateway.record(link_id)[0] == 1)
        os.kill(listening_on(urlsplit(url).port or 0), 9)
        stop.set()
        reader.join()
    with own_gateway("second.log", download_lease="2") as gateway:
        _, fresh = gateway.link("48k.bin", max_downloads=None)
        # Any download begun after the lease lapsed settles the dead one.
        wait_for(lambda: httpx.get(fresh).status_code == 200 and gateway.record(link_id)[0] == 0)
        assert [e.outcome for e in gateway.service.events(link_id)] == [Outcome.ABORTED]
        again = gateway.url + urlsplit(url).path
        assert received(again, {}) == (200, SIZES["50m.bin"])
        assert gateway.record(link_id)[0] == 1


def test_a_locked_database_freezes_nothing_else(gateway: Gateway) -> None:
    """While another process holds the database's write lock, a download waiting on it
    keeps no one else waiting: /healthz answers within 100 ms and a body in flight flows."""
    _, busy = gateway.link(max_downloads=None)
    _, flowing = gateway.link("50m.bin", max_downloads=None)
    with httpx.stream("GET", flowing, timeout=60) as body:
        chunks = body.iter_bytes(1 << 20)
        next(chunks)
        lock = sqlite3.connect(gateway.service.settings.data_dir / "sesame.db", timeout=1)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            waiting = threading.Thread(target=lambda: httpx.get(busy, timeout=30), daemon=True)
            waiting.start()
            time.sleep(0.3)  # let the waiting download reach the lock
            with httpx.Client(timeout=5) as client:  # made beforehand: not part of the time
                client.get(gateway.url + "/livez")
                started = time.monotonic()
                assert client.get(gateway.url + "/healthz").status_code < 600
                assert time.monotonic() - started < 0.1
            got = sum(len(next(chunks)) for _ in range(10))
            assert got >= 10 * MIB - MIB
        finally:
            lock.rollback()
            lock.close()
        waiting.join()


def test_downloads_on_one_connection_leave_no_descriptor_behind(gateway: Gateway) -> None:
    """Five downloads on one keep-alive connection (their deliveries share the connection's
    tap under the Procfile's protocol): once the client goes, the gateway holds no more
    sockets than before, so nothing keeps the connection open on its side."""
    _, url = gateway.link("48k.bin", max_downloads=None)
    parts = urlsplit(url)
    fds = Path(f"/proc/{listening_on(parts.port or 0)}/fd")

    def sockets() -> int:
        count = 0
        for fd in fds.iterdir():
            with suppress(OSError):  # closed meanwhile
                count += os.readlink(fd).startswith("socket:")
        return count

    before = sockets()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for _ in range(5):
            sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = b"".join(iter(stream.readline, b"\r\n"))
            assert head.startswith(b"HTTP/1.1 200"), head
            assert len(stream.read(SIZES["48k.bin"])) == SIZES["48k.bin"]
        stream.close()
    wait_for(lambda: sockets() <= before)


def test_a_request_dropped_at_once_uses_nothing_up(gateway: Gateway) -> None:
    """A client that sends its request and resets the connection at once (a flaky start)
    leaves a one-time link of a small, kept file as it was."""
    link_id, url = gateway.link("48k.bin")
    parts = urlsplit(url)
    for _ in range(5):
        # A receive buffer far smaller than the file, set before connecting (it sets the
        # window): the client's machine cannot acknowledge the whole file before the reset
        # however late this process closes (preempted after sendall on a busy machine, it
        # used to get all of it acknowledged, and the link rightly counted).
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect((parts.hostname, parts.port))
        sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    # Each request that reached the gateway has a row from its start, amended once it is
    # settled: wait until there are rows and they stay the same for two seconds (one in flight
    # would leave the link counted, and the download below refused).
    seen: list[list[str]] = []

    def settled_and_still() -> bool:
        outcomes = sorted(str(e.outcome) for e in gateway.service.events(link_id))
        seen.append(outcomes)
        recent = seen[-40:]  # wait_for looks every 0.05 s: the last two seconds
        return bool(outcomes) and len(recent) == 40 and all(r == outcomes for r in recent)

    wait_for(settled_and_still)
    # Each was given back (aborted), or refused while another held the link's one download.
    assert str(Outcome.ABORTED) in seen[-1], seen[-1]  # the race was run
    assert set(seen[-1]) <= {str(Outcome.ABORTED), str(Outcome.REFUSED)}, seen[-1]
    assert gateway.service.downloads.usage().downloads == 0
    assert gateway.record(link_id)[0] == 0
    assert received(url, {}) == (200, SIZES["48k.bin"])


def test_a_stop_while_the_file_is_locked_writes_what_it_let_in(own_gateway: OwnGateway) -> None:
    """Another process holds the database's write lock while clients download through a link
    with no limit, then SIGTERM: what the gateway answered 200 before it saw the store fail
    is held, the rest is refused 503 (nothing is let in that may not be written); the stop
    keeps trying, and once the lock is let go, every download answered 200 has its row and
    its count, and none more."""
    with own_gateway(store_timeout="0.5") as gateway:
        link_id, url = gateway.link("48k.bin", max_downloads=None)
        locker = sqlite3.connect(gateway.service.store.path, isolation_level=None)  # type: ignore[attr-defined]
        locker.execute("BEGIN IMMEDIATE")  # as another process's writer, held throughout
        answers: list[int] = []
        try:
            with httpx.Client(timeout=10) as http:
                deadline = time.monotonic() + 2  # several store timeouts
                while time.monotonic() < deadline:
                    answers.append(http.get(url).status_code)
            assert set(answers) == {200, 503}, answers  # held at first, then refused
            os.kill(listening_on(urlsplit(url).port or 0), 15)
            time.sleep(2.5)  # the stop tries, and fails, more than once meanwhile
            assert "Finished server process" not in gateway.log.read_text()
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        wait_for(lambda: "Finished server process" in gateway.log.read_text())
        downloads, _ = gateway.record(link_id)
        rows = gateway.service.events(link_id)
        assert downloads == len(rows) == answers.count(200)
        assert "could not be written" not in gateway.log.read_text()


@pytest.mark.parametrize("limit", [100_000, None])
def test_a_clean_stop_keeps_every_download_and_its_row(
    own_gateway: OwnGateway, limit: int | None
) -> None:
    """SIGTERM while eight clients download as fast as they can: every download a client
    received is counted and logged, and nothing is counted that has no row (downloads are
    decided in batches: through a link with a limit, none is answered before its batch is
    written; through one with none, what was held back is written as the gateway stops)."""
    with own_gateway() as gateway:
        link_id, url = gateway.link("48k.bin", max_downloads=limit)
        received: list[int] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    try:
                        answer = http.get(url)
                    except httpx.HTTPError:
                        return  # the gateway stopped
                    if answer.status_code != 200:
                        return
                    assert len(answer.content) == SIZES["48k.bin"]
                    received.append(1)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(received) >= 200)
        os.kill(listening_on(urlsplit(url).port or 0), 15)
        for thread in threads:
            thread.join(timeout=30)
        stop.set()
        wait_for(lambda: "Finished server process" in gateway.log.read_text())  # it stopped
        downloads, _ = gateway.record(link_id)
        rows = [e for e in gateway.service.events(link_id) if e.outcome == Outcome.COMPLETED]
        assert downloads == len(rows) == sum(1 for e in rows if e.counted)
        assert len(received) <= downloads <= len(received) + len(threads)
