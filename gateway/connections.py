"""Limits on what one client connection may cost, which uvicorn does not set by itself.

``LimitedProtocol`` is the Procfile's HTTP protocol (``--http
gateway.connections:LimitedProtocol``): uvicorn's httptools protocol with the zero-copy
extension (``gateway.zerocopy``), and

- a deadline for a request's head (its request line and headers) to arrive, counted from the
  connection or from the first byte of the next request on it: a client that connects and says
  nothing, or sends its headers a byte at a time, is closed when it passes;
- a cap on the head's size: past it the answer is 431 and the connection closes (httptools
  has none, and keeps a header in memory until its end);
- a keep-alive timeout for idle connections between requests (uvicorn's own, set from here);
- a cap on open connections per process, below the open-file limit: past it a new
  connection is closed at once, so that files and the store always have descriptors left.

``configure(settings)``, called once by ``create_app``, sets them and raises the process's soft
open-file limit to its hard one.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from gateway.delivery import Tap
from gateway.zerocopy import ZeroCopyProtocol
from sesame.settings import Settings

log = logging.getLogger("sesame.connections")

RESERVED_FILES = 128  # descriptors kept for files, the store, logs: never used by clients
MAX_NOFILE = 1 << 20  # what "unlimited" is raised to
_TOO_LARGE = b"Request header fields too large.\n"
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _TOO_LARGE
)


@dataclass(frozen=True)
class Limits:
    """What one connection may cost; see the module's docstring."""

    header_timeout: float = 15.0
    keep_alive_timeout: int = 5
    max_header_size: int = 32 * 1024
    max_connections: int = 1000


def configure(settings: Settings) -> Limits:
    """Set the limits of every LimitedProtocol of this process from ``settings``, after
    raising the open-file limit as far as allowed; returns them."""
    open_files = raise_open_file_limit()
    connections = settings.max_connections
    if open_files is not None:
        connections = max(1, min(connections, open_files - RESERVED_FILES))
    LimitedProtocol.limits = Limits(
        header_timeout=settings.header_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        max_header_size=int(settings.max_header_size),
        max_connections=connections,
    )
    return LimitedProtocol.limits


def raise_open_file_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard one (the systemd default soft limit, 1,024,
    is too few for a server); the soft limit now, or None if it is unlimited."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_NOFILE if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, wanted)
    return None if soft == resource.RLIM_INFINITY else soft


class LimitedProtocol(ZeroCopyProtocol):
    """ZeroCopyProtocol with a head deadline, a head size cap, an idle timeout and a
    connection cap (``limits``, set by ``configure``)."""

    limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keep_alive_timeout
        self._head_bytes = 0
        self._in_head = True  # waiting for (the rest of) a request's head
        # When the head the deadline runs for began, by the event loop's clock: the first
        # head's as the connection was made, a later one's at its first byte.
        self._head_began = 0.0
        self._heads_done = False  # a head has come whole on this connection
        # Armed as the connection is made and as a head begins; left armed as a head ends,
        # and it looks again when it fires: a timer per connection every header_timeout at
        # most, not two timer calls per request.
        self._head_deadline: asyncio.TimerHandle | None = None
        self._tap: Tap | None = None

    def tap(self) -> Tap | None:
        """The connection's tap (gateway.delivery), made at its first response that needs
        one and shared by the rest; each caller holds it once."""
        if self._tap is None and self.transport is not None:
            self._tap = Tap.of(self.transport)
        return None if self._tap is None else self._tap.hold()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.abort()  # no answer: an answer costs what the cap is there to save
            return
        self._head_began = self.loop.time()
        self._arm_head_deadline(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        if self._tap is not None:
            self._tap.release()  # closed now, or once the last delivery reading it is over
            self._tap = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_size:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        now = self.loop.time()
        if self._heads_done:  # the first head's deadline runs from the connection's start
            self._head_began = now
        self._arm_head_deadline(self._head_began + self.limits.header_timeout - now)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads_done = True
        self._head_bytes = 0
        super().on_headers_complete()

    def _refuse_head(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_431)
            self.transport.close()
        self._disarm_head_deadline()

    def _arm_head_deadline(self, delay: float) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(delay, self._head_too_late)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_late(self) -> None:
        self._head_deadline = None
        if not self._in_head or self.transport.is_closing():
            return  # armed for a head that came in time; the next head arms it again
        left = self._head_began + self.limits.header_timeout - self.loop.time()
        if left > 0:  # a later head than the one it was armed for
            self._arm_head_deadline(left)
        else:
            self.transport.close()
