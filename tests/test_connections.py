"""What one client connection may cost, on a real gateway process: a head that does not
arrive in time and an idle keep-alive connection are closed on time while normal clients are
served, a head past SESAME_MAX_HEADER_SIZE gets 431, and connections past
SESAME_MAX_CONNECTIONS are closed at once."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support import KEY, running_gateway, sesame_env, write_files


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gateway with short deadlines: 1 s for a head, 1 s of keep-alive idleness."""
    folder = tmp_path_factory.mktemp("limits")
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(write_files(folder / "files", {"a.txt": b"a"})),
        data_dir=str(folder / "state"),
        header_timeout="1",
        keep_alive_timeout="1",
        max_header_size="16KiB",
        max_connections="40",
    )
    with running_gateway(env, folder / "gateway.log") as base:
        yield base


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_after(sock: socket.socket, limit: float = 6) -> float:
    """Seconds until the server closes ``sock`` (reading and dropping what it sends)."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_silent_connection_is_closed_on_time(gateway: str) -> None:
    """Twenty clients that connect and say nothing are closed after the head deadline,
    while a normal client is served meanwhile."""
    with ExitStack() as stack:
        silent = [stack.enter_context(connect(gateway)) for _ in range(20)]
        assert httpx.get(gateway + "/livez").status_code == 200
        waited = [closed_after(sock) for sock in silent]
    assert max(waited) < 3


def dawdle(sock: socket.socket) -> float:
    """Start a request's head on ``sock`` and go on with it a header every 0.2 s (8 s in
    all, slowloris); seconds until the server closes the connection."""
    sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
    began = time.monotonic()
    try:
        for _ in range(40):
            sock.sendall(b"X-Slow: a\r\n")
            time.sleep(0.2)  # the client's own pace, not a wait for an expiry
    except (BrokenPipeError, ConnectionResetError):
        pass
    return time.monotonic() - began + closed_after(sock)


def test_a_slow_head_is_closed_on_time(gateway: str) -> None:
    """Headers sent a byte at a time (slowloris) are cut off at the deadline, not served."""
    with connect(gateway) as sock:
        assert dawdle(sock) < 3


def test_a_later_heads_deadline_runs_from_its_own_start(gateway: str) -> None:
    """On a kept-alive connection, a second head that begins 0.6 s after the first and
    dawdles is cut off a full deadline (1 s) after it began: not sooner, when the timer
    armed for the first head fires, nor never."""
    with connect(gateway) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(0.6)  # the client's own pause between its requests
        assert 0.9 < dawdle(sock) < 3


def test_a_first_head_begun_late_is_cut_off_a_deadline_after_connecting(gateway: str) -> None:
    """The first head's deadline runs from the connection: a client that says nothing for
    0.8 s and then dawdles is closed about 1 s after it connected, not 1 s after its first
    byte."""
    with connect(gateway) as sock:
        connected = time.monotonic()
        time.sleep(0.8)  # the client's own silence before its first byte
        dawdle(sock)
        assert time.monotonic() - connected < 1.6


def test_an_idle_keep_alive_connection_is_closed(gateway: str) -> None:
    """After an answer, a keep-alive connection with no next request closes after 1 s."""
    with connect(gateway) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_after(sock) < 3


def test_a_huge_head_gets_431(gateway: str) -> None:
    """A 64 KiB header is refused with 431 and the connection closed; the gateway goes on."""
    with connect(gateway) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            sock.sendall(b"a" * 64 * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431")
    assert httpx.get(gateway + "/livez", headers={"x-ok": "a" * 8000}).status_code == 200


def test_connections_past_the_cap_are_closed_at_once(gateway: str) -> None:
    """With SESAME_MAX_CONNECTIONS=40, the connections past 40 are closed straight away."""
    with ExitStack() as stack:
        held = [stack.enter_context(connect(gateway)) for _ in range(50)]
        quickly = [closed_after(sock, limit=0.5) < 0.5 for sock in held[-5:]]
    assert all(quickly)


def test_the_open_file_limit_is_raised_to_the_hard_one() -> None:
    """raise_open_file_limit() lifts a soft RLIMIT_NOFILE of 256 to the hard limit."""
    script = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from gateway.connections import raise_open_file_limit\n"
        "raise_open_file_limit()\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    soft, hard = (int(n) for n in run.stdout.split())
    assert soft == (1 << 20 if hard == resource.RLIM_INFINITY else hard) and soft > 256


def test_the_procfile_uses_the_limited_protocol() -> None:
    """The Procfile (and so the tests and the benchmark) starts uvicorn with LimitedProtocol."""
    procfile = (Path(__file__).resolve().parent.parent / "Procfile").read_text()
    assert "--http gateway.connections:LimitedProtocol" in procfile
