"""gateway.delivery on real loopback TCP sockets: what a client's TCP acknowledged of one
response, not of what the connection carried before it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway import delivery
from gateway.delivery import Delivery, Tap
from sesame.models import DownloadEvent, Outcome
from sesame.service import Service
from tests.support import gateway_of_files

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")


@dataclass
class _Transport:
    """What Delivery reads of a transport: nothing is left in its buffer, and it is open."""

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


@dataclass
class _Cycle:
    transport: Any


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A server's and a client's end of one loopback TCP connection; the client's receive
    buffer small, so that a body it does not read stays partly unacknowledged."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    try:
        yield server, client
    finally:
        server.close()
        client.close()


def _unread(sock: socket.socket) -> int:
    """Bytes waiting in ``sock``'s receive queue: what its TCP took in (and acknowledged)."""
    return int(struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0" * 4))[0])


def _earlier_read_whole(server: socket.socket, client: socket.socket) -> None:
    """An earlier response of 10,000 bytes, read whole and acknowledged."""
    assert _send_what_fits(server, b"e" * 10_000) == 10_000
    received = 0
    while received < 10_000:
        received += len(client.recv(65536))
    time.sleep(0.05)  # the earlier response's last acknowledgement arrives


def _send_what_fits(sock: socket.socket, data: bytes) -> int:
    sent = 0
    while sent < len(data):
        try:
            sent += sock.send(data[sent:])
        except BlockingIOError:
            break
    return sent


@pytest.mark.parametrize("at_once", [False, True])
def test_a_body_counts_only_its_own_acknowledged_bytes(
    connection: tuple[socket.socket, socket.socket],
    at_once: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an earlier response the client read whole, a body it stops reading is
    delivered as far as its TCP took it in, exactly, whether where the body began was
    measured as it started or, for a body sent in one write, at settling."""
    monkeypatch.setattr(delivery, "STALL", 0.5)  # no progress for that long: it is over
    server, client = connection
    earlier = b"e" * 10_000
    assert _send_what_fits(server, earlier) == len(earlier)
    received = b""
    while len(received) < len(earlier):
        received += client.recv(65536)
    tap = Tap(socket.socket(fileno=os.dup(server.fileno())))
    each = Delivery(_Cycle(_Transport()), tap)
    each.start(at_once=at_once)
    written = _send_what_fits(server, b"b" * (8 * 1024 * 1024))
    got = asyncio.run(each.settle(written))
    each.close()
    assert 0 < got < written  # the client stopped reading: not all of it
    assert got == _unread(client)
    assert not each.reset


def test_what_the_connection_was_given_is_read_whole_in_every_state(
    connection: tuple[socket.socket, socket.socket],
) -> None:
    """What the socket was given is what it acknowledged and still holds, however that is
    read (one look at TCP_INFO when it holds nothing, SIOCOUTQ besides when it may): with
    everything acknowledged, with a body the client stopped reading, once it read it all,
    and after the client reset the connection with bytes unread."""
    server, client = connection
    each = Delivery(_Cycle(_Transport()), Tap(socket.socket(fileno=os.dup(server.fileno()))))

    def settled(total: int) -> int:
        for _ in range(100):  # a stuck body's last window probe, or the last ack, comes
            if each.written() == total:
                break
            time.sleep(0.01)
        return each.written()

    given = _send_what_fits(server, b"e" * 10_000)
    assert settled(given) == given  # all of it acknowledged: nothing held
    given += _send_what_fits(server, b"b" * (8 * 1024 * 1024))
    assert settled(given) == given  # the client reads nothing: most of it held
    unread = given
    while unread:
        unread -= len(client.recv(min(unread, 1 << 20)))
    assert settled(given) == given
    given += _send_what_fits(server, b"c" * (8 * 1024 * 1024))
    time.sleep(0.05)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset: the server's queue is emptied, its counts are not
    assert settled(given) == given
    each.close()


@dataclass
class _WholeCycle:
    """A cycle that wrote a whole response's head (``whole_head`` bytes) and body at once."""

    transport: Any
    whole_head: int


def test_a_whole_response_on_an_idle_connection_counts_its_body_not_its_head(
    connection: tuple[socket.socket, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an earlier response the client read whole (the connection holding nothing), a
    head and body written at once are measured from before them, with the head's size
    added: the body is delivered as far as the client's TCP took it in, less the head."""
    monkeypatch.setattr(delivery, "STALL", 0.5)
    server, client = connection
    _earlier_read_whole(server, client)
    head = b"h" * 300
    each = Delivery(
        _WholeCycle(_Transport(), len(head)), Tap(socket.socket(fileno=os.dup(server.fileno())))
    )
    each.start(at_once=True)
    assert each.before == 10_000  # measured before the write, not after it
    sent = _send_what_fits(server, head + b"b" * (8 * 1024 * 1024)) - len(head)
    got = asyncio.run(each.settle(sent))
    each.close()
    assert 0 < got < sent
    assert got == _unread(client) - len(head)


@dataclass
class _DroppedCycle:
    """A cycle whose one write never reached the socket (gateway.zerocopy says so)."""

    transport: Any
    dropped: bool = True


@pytest.mark.parametrize("client_ends", ["fin", "reset"])
def test_a_body_sent_at_once_that_never_went_is_delivered_as_nothing(
    connection: tuple[socket.socket, socket.socket],
    client_ends: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a connection that carried an earlier response, read whole, a body whose one write
    was dropped (the transport closing, or the write failing) is delivered as 0 bytes: not
    the earlier response's, whether the client then closes or resets."""
    monkeypatch.setattr(delivery, "STALL", 0.3)
    server, client = connection
    _earlier_read_whole(server, client)
    each = Delivery(_Cycle(_Transport()), Tap(socket.socket(fileno=os.dup(server.fileno()))))
    each.cycle = _DroppedCycle(_Transport())
    each.start(at_once=True)
    if client_ends == "reset":
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    else:
        client.shutdown(socket.SHUT_WR)
    time.sleep(0.05)
    assert asyncio.run(each.settle(5000)) == 0
    each.close()


@dataclass
class _Flow:
    write_paused: bool


@dataclass
class _Closing:
    closing: bool

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing


@pytest.mark.parametrize(
    "cycle",
    [
        _Cycle(_Closing(True)),
        type("Paused", (), {"transport": _Closing(False), "flow": _Flow(True)})(),
        type("Gone", (), {"transport": _Closing(False), "disconnected": True})(),
    ],
    ids=["closing", "paused", "gone"],
)
def test_a_write_that_may_wait_or_be_dropped_is_measured_as_it_starts(
    connection: tuple[socket.socket, socket.socket], cycle: Any
) -> None:
    """Writes paused, the client gone or the transport closing: where the body begins is
    measured at its start, not left for settling."""
    server, _ = connection
    each = Delivery(cycle, Tap(socket.socket(fileno=os.dup(server.fileno()))))
    each.start(at_once=True)
    assert each.base is not None
    each.close()


KEPT = 64 * 1024  # the largest file kept in memory by default (SESAME_MEMORY_FILE_SIZE)
PIPELINED = 100  # kept answers enough to fill the socket's buffers, then the transport's


@pytest.fixture(scope="module")
def kept_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Service]]:
    """A real gateway process sharing a 64 KiB file (kept in memory), and its service."""
    with gateway_of_files(tmp_path_factory.mktemp("kept"), {"small.bin": os.urandom(KEPT)}) as made:
        yield made


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(min(65536, n - len(data)))
        assert chunk, "closed early"
        data += chunk
    return data


def test_a_kept_body_begun_while_writes_wait_counts_only_its_body(
    kept_gateway: tuple[str, Service],
) -> None:
    """A client asks for a hundred downloads of a kept file at once and reads nothing for a
    second: the socket's buffers and then the transport's fill, and the next download
    begins while the connection's writes are paused. The client then reads every earlier
    answer whole and 20 kB of that one, and resets. That download is logged aborted with the
    body bytes its TCP took in: not those and its own head's as well."""
    url, service = kept_gateway
    path, link_id, sock = _slow_reader(url, service)
    asks = [f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: r{i}\r\n\r\n" for i in range(PIPELINED)]
    sock.sendall("".join(asks).encode())
    time.sleep(1.0)  # the client reads nothing yet: the server's writes back up
    begun = len(service.events(link_id))  # the last of them waits for room: writes paused
    assert 1 < begun < PIPELINED
    for _ in range(begun - 1):  # the answers written before it, whole
        _head(sock)
        _recv_exactly(sock, KEPT)
    _head(sock)
    taken = len(_recv_exactly(sock, 20_000)) + _taken_in(sock)
    _reset(sock)
    assert _aborted(service, link_id, f"r{begun - 1}").bytes_sent == taken


def test_a_kept_body_sent_whole_on_an_idle_connection_counts_only_its_body(
    kept_gateway: tuple[str, Service],
) -> None:
    """On a connection that carried an earlier answer, read whole, a kept file's head and
    body leave in one write, where the body begins measured before it (the connection
    holding nothing) and the head's size added. The client reads the head and 20 kB, and
    resets: the download is logged aborted with the body bytes its TCP took in, exactly."""
    url, service = kept_gateway
    path, link_id, sock = _slow_reader(url, service)

    def ask(agent: str) -> None:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n".encode())
        _head(sock)

    ask("earlier")
    _recv_exactly(sock, KEPT)
    time.sleep(0.1)  # its last acknowledgement reaches the server: the connection is idle
    ask("this")
    taken = len(_recv_exactly(sock, 20_000)) + _taken_in(sock)
    _reset(sock)
    assert _aborted(service, link_id, "this").bytes_sent == taken


def _slow_reader(url: str, service: Service) -> tuple[str, str, socket.socket]:
    """A new link's path and id, and a client connected to ``url`` with a small receive
    buffer, so that what it does not read stays unacknowledged."""
    path = urlsplit(service.share("small.bin").url).path
    link_id = service.signer.read(path.rsplit("/", 1)[1]).link_id
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((urlsplit(url).hostname, urlsplit(url).port))
    return path, link_id, sock


def _head(sock: socket.socket) -> None:
    """Read a 200 answer's head."""
    got = b""
    while not got.endswith(b"\r\n\r\n"):
        got += _recv_exactly(sock, 1)
    assert got.startswith(b"HTTP/1.1 200"), got


def _taken_in(sock: socket.socket) -> int:
    """What ``sock``'s kernel holds unread, once it took in all that fits (acknowledged)."""
    unread, still = -1, 0
    while still < 5:
        time.sleep(0.1)  # polling the client's own socket
        now = _unread(sock)
        unread, still = now, still + 1 if now == unread else 0
    return unread


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset: the download is aborted


def _aborted(service: Service, link_id: str, agent: str) -> DownloadEvent:
    """The row of ``agent``'s download of ``link_id``, once the gateway settled it aborted."""

    def event() -> DownloadEvent:
        return next(e for e in service.events(link_id) if e.user_agent == agent)

    deadline = time.monotonic() + 10
    while event().outcome is not Outcome.ABORTED:
        assert time.monotonic() < deadline, event()
        time.sleep(0.05)  # polling for the gateway's settling
    return event()
