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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import IO, Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import is_ssl

EXTENSION = "http.response.zerocopy"

# Bytes per os.sendfile call; the socket takes what fits and the rest waits for room.
_STEP = 16 * 1024 * 1024
# While the headers are still queued in the transport (rare: a full socket), how often to
# look whether they have gone. The file's bytes must follow them, never overtake them.
_FLUSH_POLL = 0.002
_TCP_CORK = getattr(socket, "TCP_CORK", None)  # Linux's; elsewhere segments go as they fill
STALL = 60.0  # seconds a client may read nothing before its download is taken as abandoned


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
            self.scope.setdefault("extensions", {})[EXTENSION] = {}


class _ZeroCopyCycle(RequestResponseCycle):
    """A request-response cycle that also takes zero-copy body messages, and writes a
    response's head together with its body's first bytes."""

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started:
            return await self._gather_head(message)
        gathered = self.transport
        if isinstance(gathered, _Gathering):  # the head waits for this message
            if kind == "http.response.body":
                try:
                    return await super().send(message)  # with the head: one write
                finally:
                    self.transport = gathered.release()
            self.transport = gathered.release()
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
            await super().send(message)
        except BaseException:
            self.transport = gathering.release()
            raise

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
        if self._kept and not self.transport.is_closing():
            self.transport.writelines(self._kept)
        self._kept, self._size = [], 0


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
