"""uvicorn's httptools protocol with the ASGI zero-copy send extension.

A message ``{"type": "http.response.zerocopy", "file": f, "offset": o, "count": n}`` sends
``n`` bytes of the open file ``f`` from ``o`` with ``os.sendfile``: the kernel moves them
from the page cache to the socket and Python never touches them. That is how nginx sends
files; a Python read-then-write loop tops out at about 1.2 GB/s per core here and leaves
the CPU to no one else (see bench/RESULTS.md).

Run the gateway with ``uvicorn --http gateway.zerocopy:ZeroCopyProtocol`` (the Procfile
does). Under any other server, and on a TLS connection (uvicorn's ``--ssl-*``: the kernel
would send the bytes unencrypted), the extension is not offered and responses stream as usual.

The same cycle keeps a response's head (uvicorn writes it as soon as the response starts)
until the first body message, and writes both together: a small file's whole answer is one
system call and one TCP segment rather than two, and a zero-copy body still follows its head.
It also takes a whole response in one message, ``{"type": "sesame.response.whole", "status":
s, "headers": h, "body": b}`` with ``h`` a Head: written as uvicorn would write its start and
its body, in that one write, without either message's round through uvicorn's ``send``
(about a tenth of a small download's time, measured); offered where zero-copy is.
Headers given as a ``Head`` (a kept file's, the same for every download of it) are checked
and written out once, not on every response: uvicorn's loop over them, two regular
expressions a header, was a sixth of a small download's time in the event loop (measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterable
from typing import IO, Any, cast

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import is_ssl

EXTENSION = "http.response.zerocopy"
WHOLE = "sesame.response.whole"  # a whole response, head and body, in one message

# Bytes per os.sendfile call; the socket takes what fits and the rest waits for room.
_STEP = 16 * 1024 * 1024
# While the headers are still queued in the transport (rare: a full socket), how often to
# look whether they have gone. The file's bytes must follow them, never overtake them.
_FLUSH_POLL = 0.002
_TCP_CORK = getattr(socket, "TCP_CORK", None)  # Linux's; elsewhere segments go as they fill
STALL = 60.0  # seconds a client may read nothing before its download is taken as abandoned


class Head(tuple[tuple[bytes, bytes], ...]):
    """A response's headers, checked and written out as uvicorn would write them, once: a
    cycle of this module writes ``block`` as it is. They must hold a Content-Length, and no
    Connection or Transfer-Encoding (uvicorn's to act on). Raises ValueError otherwise."""

    block: bytes
    length: int

    def __new__(cls, headers: list[tuple[bytes, bytes]]) -> Head:
        head = super().__new__(cls, headers)
        head.block, length = _written(head)
        if length is None:
            raise ValueError("no Content-Length")
        head.length = length
        return head


def _written(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, int | None]:
    """``headers`` as uvicorn writes them (names lowercased), and their Content-Length.
    Raises ValueError for one it would refuse, or act on (Connection, Transfer-Encoding)."""
    lines: list[bytes] = []
    length = None
    for name, value in headers:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            raise ValueError(f"not a header uvicorn would send: {name!r}")
        name = name.lower()
        if name in (b"connection", b"transfer-encoding"):
            raise ValueError(f"{name!r} is uvicorn's to act on")
        if name == b"content-length":
            length = int(value.decode())
        lines += [name, b": ", value, b"\r\n"]
    return b"".join(lines), length


class ClientGone(OSError):
    """The connection closed before a zero-copy body was sent (or the file came up short);
    ``sent`` bytes of it went out. The ASGI spec asks servers to raise an OSError here."""

    def __init__(self, sent: int) -> None:
        super().__init__(f"the connection closed after {sent} bytes of the body")
        self.sent = sent


class ZeroCopyProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests offer ``http.response.zerocopy``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Over TLS sendfile would write the file's bytes past the encryption, in the clear.
        self.zerocopy = not is_ssl(transport)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if not self.zerocopy:
            return
        cycle = self.cycle
        # A new request made a new cycle for this scope (an upgrade request makes none).
        if cycle is not None and cycle.scope is self.scope and type(cycle) is RequestResponseCycle:
            cycle.__class__ = _ZeroCopyCycle
            extensions = self.scope.setdefault("extensions", {})
            extensions[EXTENSION] = extensions[WHOLE] = {}


class _ZeroCopyCycle(RequestResponseCycle):
    """A request-response cycle that also takes zero-copy body messages and whole responses,
    and writes a response's head together with its body's first bytes. ``dropped``: what it
    had for one write never reached the socket; ``whole_head``: the bytes of the head it
    wrote in front of a whole response's body, in the same write (None: it wrote none so).
    gateway.delivery reads both."""

    dropped = False
    whole_head: int | None = None

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == WHOLE:
            return await self._whole(message["status"], message["headers"], message["body"])
        if kind == "http.response.start" and not self.response_started:
            return await self._gather_head(message)
        gathered = self.transport
        if isinstance(gathered, _Gathering):  # the head waits for this message
            if kind == "http.response.body":
                try:
                    return await super().send(message)  # with the head: one write
                finally:
                    self.transport = self._released(gathered)
            self.transport = self._released(gathered)
        if kind != EXTENSION:
            return await super().send(message)
        if self.disconnected:  # uvicorn drops a response start once the client has gone
            raise ClientGone(0)
        if not self.response_started or self.response_complete or self.chunked_encoding:
            raise RuntimeError("A zero-copy body needs a started response with Content-Length.")
        count = int(message["count"])
        if count > self.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        more_body = bool(message.get("more_body", False))
        if self.scope["method"] == "HEAD":
            count = 0
        sent = await self._sendfile(message["file"], int(message.get("offset", 0)), count)
        if sent < count:  # the client went, or the file shrank: the body cannot be finished
            self.disconnected = True
            self.transport.close()
            raise ClientGone(sent)
        # What is left is plain bookkeeping: let uvicorn account for an empty body message.
        self.expected_content_length -= sent
        await super().send({"type": "http.response.body", "body": b"", "more_body": more_body})

    async def _gather_head(self, message: Any) -> None:
        """uvicorn's handling of the response's start, its head kept for the next write
        (a small file's whole response then leaves in one write and one TCP segment)."""
        gathering = _Gathering(self.transport)
        self.transport = cast(asyncio.Transport, gathering)  # what uvicorn uses of it, it has
        try:
            headers = message.get("headers")
            defaults = _defaults(self.default_headers) if type(headers) is Head else None
            if defaults is not None and self._plain():
                gathering.write(self._start(message["status"], defaults, headers))
                return
            await super().send(message)
        except BaseException:
            self.transport = self._released(gathering)
            raise

    async def _whole(self, status: int, headers: Head, body: bytes) -> None:
        """A whole response (WHOLE): what uvicorn's ``send`` does with its start and then
        its body, in one write, when that is all it would do; else through it, in turn."""
        defaults = _defaults(self.default_headers) if type(headers) is Head else None
        if (
            defaults is None
            or self.response_started
            or not self._plain()
            or headers.length != len(body)
            or self.scope["method"] == "HEAD"
        ):
            await self.send({"type": "http.response.start", "status": status, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})
            return
        head = self._start(status, defaults, headers)
        transport = self.transport
        if transport.is_closing():
            self.dropped = True  # a closing transport takes nothing more
        else:
            transport.writelines([head, body])
            self.dropped = transport.is_closing()  # see _Gathering._flush
            self.whole_head = len(head)
        # What uvicorn's send does once a body ends.
        self.expected_content_length = 0
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            transport.close()
        self.on_response()

    def _released(self, gathering: _Gathering) -> asyncio.Transport:
        transport = gathering.release()
        self.dropped = self.dropped or gathering.dropped
        return transport

    def _plain(self) -> bool:
        """Whether uvicorn would do no more than write a response's start now: no access
        line of its own to log, no paused writes to wait for, no client gone."""
        return not (
            self.access_log
            or self.flow.write_paused
            or self.disconnected
            or self.chunked_encoding is not None
        )

    def _start(self, status: int, defaults: bytes, headers: Head) -> bytes:
        """What uvicorn's ``send`` does with a response's start, for headers checked once:
        the head it would write."""
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [STATUS_LINE[status], defaults, headers.block]
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        self.expected_content_length = headers.length
        self.chunked_encoding = False
        return b"".join(content)

    async def _sendfile(self, file: IO[bytes] | int, offset: int, count: int) -> int:
        """Send ``count`` bytes of ``file`` (a file or a descriptor) from ``offset``; fewer
        if the file ends first, the connection breaks or the client stops reading."""
        if count == 0:
            return 0
        while self.transport.get_write_buffer_size() and not self.disconnected:
            await asyncio.sleep(_FLUSH_POLL)
        sock = self.transport.get_extra_info("socket")
        if sock is None or self.disconnected:
            return 0
        # A duplicate of the socket's descriptor: if the transport closes meanwhile, its number
        # cannot be reused for another client's connection while bytes still go to it.
        fd = os.dup(sock.fileno())
        try:
            source = file if isinstance(file, int) else file.fileno()
            _cork(fd, True)
            try:
                return await _send_all(fd, source, offset, count)
            finally:
                _cork(fd, False)  # what is left of the last segment goes now
        finally:
            os.close(fd)


class _Gathering:
    """A transport that keeps what is written until ``release`` (or a close), which passes
    it all on to the real transport in one ``writelines`` (one system call under uvloop);
    ``release`` gives that transport back. Anything else is the real transport's; its write
    buffer counts what is kept."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._kept: list[bytes] = []
        self._size = 0
        self.dropped = False  # what was kept never reached the socket (see _flush)

    def write(self, data: bytes) -> None:
        self._kept.append(data)
        self._size += len(data)

    def close(self) -> None:  # what was written before still goes, then the connection closes
        self._flush()
        self.transport.close()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    def release(self) -> asyncio.Transport:
        self._flush()
        return self.transport

    def _flush(self) -> None:
        # writelines, not write(b"".join(...)): uvloop sends the pieces with one writev, and
        # a body kept in memory for every download of its file is not copied per response
        # (a copy a client reads slowly would stay in the transport's buffer).
        if self._kept:
            if self.transport.is_closing():
                self.dropped = True  # a closing transport takes nothing more
            else:
                self.transport.writelines(self._kept)
                # One write, whole or in part, or an error (the client reset) that closes
                # the transport at once, with none of it sent.
                self.dropped = self.dropped or self.transport.is_closing()
        self._kept, self._size = [], 0


_default_block: tuple[list[tuple[bytes, bytes]], bytes | None] | None = None


def _defaults(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The server's default headers (its Date, each second a new list) written out, once
    per list; None if uvicorn must see to them itself."""
    global _default_block
    known = _default_block  # once: another server's thread may replace it meanwhile
    if known is not None and known[0] is headers:
        return known[1]
    try:
        block: bytes | None = _written(headers)[0]
    except ValueError:
        block = None
    _default_block = (headers, block)
    return block


def _cork(fd: int, on: bool) -> None:
    """Hold back a partly filled TCP segment while a zero-copy message is sent, as nginx's
    ``tcp_nopush`` does: each sendfile call no longer pushes out its last, short segment
    (5 % more throughput on a 1 GiB file, measured). Linux only. Set through ``fd``, the
    send's own duplicate: the transport's socket may be closed meanwhile (the client gone),
    and its number given to another connection."""
    if _TCP_CORK is None:
        return
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=fd)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))
        finally:
            sock.detach()  # the descriptor stays open: it is the caller's


async def _send_all(fd: int, source: int, offset: int, count: int) -> int:
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(fd, source, offset + sent, min(_STEP, count - sent))
        except BlockingIOError:
            if not await _writable(fd):
                break  # no room for STALL seconds: a client that stopped reading
            continue
        except OSError:  # the client closed or reset the connection
            break
        if n == 0:  # the file ends before ``count``
            break
        sent += n
    return sent


async def _writable(fd: int) -> bool:
    """Whether the socket has room again within STALL seconds."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():  # it may be reported writable again before this task runs
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await asyncio.wait_for(ready, STALL)
    except TimeoutError:
        return False
    finally:
        loop.remove_writer(fd)
    return True
