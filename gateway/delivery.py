"""What the client really received of a response: the bytes its TCP acknowledged.

A write that returned only means the bytes reached the kernel's socket buffer, which holds
megabytes on Linux: a recipient who cancels a 5 MB download may have received a third of it
while every write has returned. So a download is complete only once the client's TCP has
acknowledged its last byte (``TCP_INFO``'s ``tcpi_bytes_acked``, Linux 4.2 and later); it
is aborted when the connection breaks, or stops making progress, before that.

Where the socket cannot be read (another server than uvicorn, another system than Linux, an
in-process test client), ``Delivery.of`` gives None and the gateway takes the last write for
the truth, as the README says.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import sys
import termios
from typing import Any

from starlette.types import Receive

_TCP_INFO_SIZE = 232
_BYTES_ACKED = struct.Struct("=Q")  # struct tcp_info's tcpi_bytes_acked, at byte 120
_BYTES_ACKED_AT = 120
# ... and with it (Linux 4.6 and later) tcpi_unacked at byte 24, segments sent and not yet
# acknowledged, and tcpi_notsent_bytes at byte 144, bytes not sent yet: both 0 on a socket
# that can still be acknowledged say it holds nothing, as SIOCOUTQ would, in the same look.
_UNACKED_AT, _NOTSENT_AT = 24, 144
_SEGMENTS_AND_BYTES = struct.Struct("=I92xQ16xI")  # unacked, bytes_acked, notsent_bytes
_ESTABLISHED_STATES = {1, 8}  # TCP_ESTABLISHED, TCP_CLOSE_WAIT: the socket can still send
# ... and FIN_WAIT1, LAST_ACK, CLOSING: the server closed it, but its last bytes (and its FIN)
# are still on their way, and the client may yet acknowledge them.
_ACKING_STATES = _ESTABLISHED_STATES | {4, 9, 11}
_RESET = 7  # TCP_CLOSE
STALL = 30.0  # seconds without a byte acknowledged after which the client is taken as gone
_POLLS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)  # waits between looks


class Tap:
    """A duplicate of a connection's socket descriptor, so that it can still be read after
    the server closed the connection. Closed once every holder let go: each delivery
    reading it, and the connection itself if it keeps one tap for all its responses."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._holders = 1

    @classmethod
    def of(cls, transport: Any) -> Tap | None:
        """A tap of ``transport``'s TCP socket, held once; None if it has none."""
        sock = transport.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        try:
            return cls(socket.socket(sock.family, sock.type, fileno=os.dup(sock.fileno())))
        except OSError:
            return None

    def hold(self) -> Tap:
        self._holders += 1
        return self

    def release(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            self.sock.close()


class Delivery:
    """The bytes of one response the client acknowledged, read from a tap of its socket."""

    def __init__(self, cycle: Any, tap: Tap) -> None:
        self.cycle = cycle  # its transport, read each time: gateway.zerocopy may swap it
        self.tap = tap
        self.sock = tap.sock
        # What the connection carried before this response's body: see ``start``.
        self.base: int | None = 0
        self.before: int | None = None  # ... and before its head, if the body goes at once
        self.started = False
        self.reset = False  # the client reset the connection: what it was sent, it dropped

    @classmethod
    def of(cls, receive: Receive) -> Delivery | None:
        """The delivery of the response to the request ``receive`` belongs to, under
        uvicorn on Linux; None elsewhere. Its tap is the connection's own under
        gateway.connections' protocol (one per connection), else one of its own."""
        if not sys.platform.startswith("linux"):
            return None
        # uvicorn's receive is a method of the request's cycle, which knows the transport,
        # and whose on_response is a method of the connection's protocol.
        cycle = getattr(receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            return None
        protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
        shared = getattr(protocol, "tap", None)
        tap = shared() if shared is not None else Tap.of(transport)
        return None if tap is None else cls(cycle, tap)

    def start(self, at_once: bool = False) -> None:
        """Count from here on: the response's body begins. ``at_once``: the whole body goes
        in the one write that follows, and nothing else is written to the connection before
        ``settle``; only if nothing can hold that write back or drop it meanwhile (writes
        paused, the client gone, the transport closing). Where the body begins is then
        found so: if the connection holds nothing now (each byte it was given acknowledged,
        one look), it is what was acknowledged plus the head that the same write carries
        (gateway.zerocopy's ``whole_head``), and ``settle`` looks first a turn of the event
        loop later (right after the write, no look ever found the body acknowledged);
        otherwise it is measured at ``settle``, from what the connection holds then. A
        write that fails (``dropped``) is taken to have sent none of the body."""
        if at_once and self.clear():
            self.base = None
            acked, _, held = self._look()
            idle = held == 0 and not self.cycle.transport.get_write_buffer_size()
            self.before = acked if idle else None
        else:
            self.base = self.written()
        self.started = True

    def clear(self) -> bool:
        """Whether nothing can hold a write back or drop it now: writes not paused, the
        client not gone, the transport not closing."""
        cycle = self.cycle
        flow = getattr(cycle, "flow", None)
        return not (
            getattr(cycle, "disconnected", False)
            or (flow is not None and flow.write_paused)
            or cycle.transport.is_closing()
        )

    def acked(self) -> int:
        """Bytes of this response's body the client acknowledged so far (0 before ``settle``
        for a body sent ``at_once``)."""
        if not self.started or self.base is None:
            return 0  # the body never began: none of it can have been acknowledged
        return max(0, self._info()[0] - self.base)

    async def settle(self, written: int) -> int:
        """Wait until the client acknowledged all ``written`` bytes of this response, the
        connection broke, nothing is left to acknowledge (what the server never passed on
        to the socket, as uvicorn does once the client has gone, never will be), or nothing
        was acknowledged for STALL seconds; then the bytes it acknowledged. Asynchronous:
        the event loop serves others meanwhile."""
        polls, last, idle = iter(_POLLS), -1, 0.0
        head = getattr(self.cycle, "whole_head", None)
        dropped = getattr(self.cycle, "dropped", False)
        if self.base is None and self.before is not None and head is not None and not dropped:
            self.base = self.before + head
            await asyncio.sleep(0)  # the first look, a turn of the event loop later
        while True:
            acked, state, held = self._look()
            queued = None
            if self.base is None:  # a body sent at once: everything since is this body
                queued = self._queued(held)
                went = 0 if getattr(self.cycle, "dropped", False) else written
                self.base = max(0, acked + queued - went)
            acked = max(0, acked - self.base)
            # A reset (TCP_CLOSE: this tap keeps the socket open, so no close of the
            # server's own gets it there) says the client's program closed the connection
            # with bytes it never read, though its machine acknowledged them.
            self.reset = self.reset or state == _RESET
            if acked >= written or state not in _ACKING_STATES or idle >= STALL:
                return min(acked, written)
            if not (self._queued(held) if queued is None else queued):
                # look again: the last ack may have come meanwhile
                return min(max(0, self._info()[0] - self.base), written)
            if acked != last:
                last, idle = acked, 0.0
            wait = next(polls, _POLLS[-1])
            await asyncio.sleep(wait)
            idle += wait

    def broken(self) -> bool:
        """Whether the connection can no longer carry anything to the client."""
        return self._info()[1] not in _ESTABLISHED_STATES

    def close(self) -> None:
        self.tap.release()

    def written(self) -> int:
        """Bytes the connection was given so far: acknowledged, in the socket's queue, or
        still in the transport's buffer."""
        acked, _, held = self._look()
        return acked + self._queued(held)

    def _queued(self, held: int | None) -> int:
        """Bytes given to the connection and not yet acknowledged: ``held`` of them in the
        socket (None: not known, asked with SIOCOUTQ), the rest in the transport's buffer."""
        if held is None:
            try:  # SIOCOUTQ (TIOCOUTQ's number): bytes the socket holds, not yet acknowledged
                raw = fcntl.ioctl(self.sock, termios.TIOCOUTQ, b"\0" * 4)
                held = int(struct.unpack("i", raw)[0])
            except OSError:
                held = 0
        buffered: int = self.cycle.transport.get_write_buffer_size()
        return held + buffered

    def _info(self) -> tuple[int, int]:
        """tcpi_bytes_acked and tcpi_state; (0, 0) once the socket cannot be read."""
        acked, state, _ = self._look()
        return acked, state

    def _look(self) -> tuple[int, int, int | None]:
        """tcpi_bytes_acked, tcpi_state, and 0 if the socket holds no byte unacknowledged
        (None: it may, or this kernel does not say; ask SIOCOUTQ), in one read of TCP_INFO;
        (0, 0, None) once the socket cannot be read."""
        try:
            raw = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        except OSError:
            return 0, 0, None
        if len(raw) >= _NOTSENT_AT + 4:
            unacked, acked, notsent = _SEGMENTS_AND_BYTES.unpack_from(raw, _UNACKED_AT)
            # Only while the socket keeps its queue: a reset empties it, not SIOCOUTQ's count.
            known = raw[0] in _ACKING_STATES and not unacked and not notsent
            return acked, raw[0], 0 if known else None
        if len(raw) < _BYTES_ACKED_AT + 8:
            return 0, 0, None
        return _BYTES_ACKED.unpack_from(raw, _BYTES_ACKED_AT)[0], raw[0], None


def disconnected(receive: Receive) -> bool:
    """Whether uvicorn saw the client go (it then drops what is sent without a word)."""
    return bool(getattr(getattr(receive, "__self__", None), "disconnected", False))
