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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway import delivery
from gateway.delivery import Delivery, Tap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")


@dataclass
class _Transport:
    """What Delivery reads of a transport: nothing is left in its buffer."""

    def get_write_buffer_size(self) -> int:
        return 0


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
