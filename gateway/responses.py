"""How a file leaves the gateway: exactly the spans of its Plan (sesame.ranges), from the
descriptor the request opened, and then how it went: the bytes the client acknowledged
(gateway.delivery) and whether that was all of them.

A kept body goes from memory in one write; any other body goes with ``sendfile`` under
gateway.zerocopy, or read and written a chunk at a time under any other server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import zerocopy
from gateway.access import note_status
from gateway.delivery import Delivery, disconnected
from gateway.disposition import content_disposition
from gateway.files import Opened, Version, etag, last_modified
from gateway.pacing import Pacer
from gateway.pages import NO_STORE
from sesame.catalog import media_type
from sesame.ranges import Plan

log = logging.getLogger("sesame.gateway")
DOWNLOAD_HEADERS = {**NO_STORE, "Content-Security-Policy": "default-src 'none'; sandbox"}
CHUNK = 1024 * 1024  # bytes per read when streaming without zero-copy
ZEROCOPY_CHUNK = 16 * 1024 * 1024  # bytes per zero-copy message (the pacer's slices if capped)

# (delivered bytes of the file, completed) -> the download settled
Finish = Callable[[int, bool], Awaitable[None]]
Renew = Callable[[int], Awaitable[None]]  # (delivered so far) -> the download's lease kept


class DownloadResponse(Response):
    """``plan``'s bytes of ``opened``, then ``finish`` told how it went; meanwhile ``renew``
    every ``renew_every`` seconds (None: no lease to keep)."""

    def __init__(
        self,
        opened: Opened,
        plan: Plan,
        finish: Finish,
        renew: Renew | None = None,
        renew_every: float = 10.0,
        pacer: Pacer | None = None,
    ) -> None:
        # Not Response.__init__: its headers and body are made here, or are none.
        self.status_code, self.background, self.body = plan.status, None, b""
        self.opened, self.plan = opened, plan
        self.finish, self.renew, self.renew_every = finish, renew, renew_every
        self.pacer = pacer
        # The body kept in memory, sent whole in one write (with the head).
        self.kept = opened.body is not None and plan.status == 200 and pacer is None
        self.delivery: Delivery | None = None
        self.boundary = secrets.token_hex(12) if len(plan.spans) > 1 else ""
        # Sent as they are (a kept file's are a zerocopy.Head, written out once); a copy
        # for Starlette's ``headers``.
        self.head = _headers(opened, plan, self.boundary)
        self.raw_headers = list(self.head)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.delivery = delivery = Delivery.of(receive)
        keeper = None if self.renew is None else asyncio.create_task(self._keep(delivery))
        self.progress, sent, delivered = 0, False, 0
        try:
            note_status(scope, self.plan.status)  # for the access line
            # Whole, only when its write cannot wait (its head would be counted as body
            # then: the body's start is measured before the head has gone).
            whole = self.kept and zerocopy.WHOLE in scope.get("extensions", {})
            if whole and (delivery is None or delivery.clear()):
                await self._send_whole(send, delivery)
            else:
                start = {"type": "http.response.start", "status": self.plan.status}
                await send({**start, "headers": self.head})
                if delivery is not None:
                    delivery.start(at_once=self.kept)  # count the body's bytes only
                await self._body(scope, send)
            # uvicorn drops what is sent once the client has gone, without a word: with a
            # delivery, settling sees those bytes were never acknowledged; without one, ask.
            # (Not "is it disconnected": a server that stops closes the connection itself
            # once the answer is written, and those bytes still reach the client.)
            sent = delivery is not None or not disconnected(receive)
        except OSError:  # the client went (zerocopy.ClientGone), or the file failed
            pass
        finally:
            self.opened.close()
            try:
                delivered = self.progress if sent else 0
                if delivery is not None:
                    # The lease is still kept meanwhile: a slow client may take long to ack.
                    delivered = await delivery.settle(self.progress) if sent else delivery.acked()
            finally:
                if keeper is not None:
                    keeper.cancel()
                if delivery is not None:
                    delivery.close()
            completed = sent and delivered >= self.progress
            completed = completed and not (delivery is not None and delivery.reset)
            await self.finish(self._file_bytes(delivered, completed), completed)

    def _file_bytes(self, delivered: int, completed: bool) -> int:
        """The file's bytes among ``delivered`` body bytes (a multipart body also carries
        its parts' headers)."""
        return self.plan.nbytes if completed else min(delivered, self.plan.nbytes)

    async def _keep(self, delivery: Delivery | None) -> None:
        assert self.renew is not None
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.renew(0 if delivery is None else min(delivery.acked(), self.plan.nbytes))
            except Exception:  # a store that failed once may answer next time: keep trying
                log.warning("could not renew a download's lease; trying again", exc_info=True)

    async def _body(self, scope: Scope, send: Send) -> None:
        """Send the plan's spans, counting the body's bytes handed over in ``progress``.
        Raises OSError if the connection breaks or the file comes up short."""
        if self.kept:
            assert self.opened.body is not None
            return await self._send_bytes(send, self.opened.body, more=False)
        zerocopied = zerocopy.EXTENSION in scope.get("extensions", {})
        sender = self._send_zerocopy if zerocopied else self._send_streamed
        for number, (start, end) in enumerate(self.plan.spans):
            if self.boundary:
                part = _part_head(self.boundary, self.opened.name, start, end, self.plan.size)
                await self._send_bytes(send, part, more=True)
            await sender(send, start, end, bool(self.boundary) or number + 1 < len(self.plan.spans))
        if self.boundary:
            await self._send_bytes(send, f"\r\n--{self.boundary}--\r\n".encode(), more=False)

    async def _send_whole(self, send: Send, delivery: Delivery | None) -> None:
        """The kept body and its head in one message (gateway.zerocopy's WHOLE)."""
        body = self.opened.body
        assert body is not None
        if delivery is not None:
            delivery.start(at_once=True)  # nothing is written before the message is, at once
        status = self.plan.status
        await send({"type": zerocopy.WHOLE, "status": status, "headers": self.head, "body": body})
        self.progress += len(body)

    async def _send_bytes(self, send: Send, data: bytes, more: bool) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": more})
        self.progress += len(data)

    async def _send_zerocopy(self, send: Send, start: int, end: int, more: bool) -> None:
        """Bytes ``start`` to ``end`` of the file handed to the kernel (gateway.zerocopy)."""
        step = (self.pacer and self.pacer.chunk_size) or ZEROCOPY_CHUNK
        position, fd = start, self._descriptor()
        while position < end:
            count = min(step, end - position)
            last = position + count >= end
            message = {"type": zerocopy.EXTENSION, "file": fd, "offset": position}
            try:
                await send({**message, "count": count, "more_body": more or not last})
            except zerocopy.ClientGone as gone:
                self.progress += gone.sent
                raise
            self.progress += count
            position += count
            await self._pace(count, last)

    async def _send_streamed(self, send: Send, start: int, end: int, more: bool) -> None:
        """Bytes ``start`` to ``end`` of the file, read off the event loop, in chunks."""
        step = (self.pacer and self.pacer.chunk_size) or CHUNK
        position, fd = start, self._descriptor()
        while position < end:
            count = min(step, end - position)
            chunk = await run_in_threadpool(os.pread, fd, count, position)
            if not chunk:
                raise OSError("the file is shorter than it was")
            position += len(chunk)
            last = position >= end
            await self._send_bytes(send, chunk, more or not last)
            if self.delivery is not None and self.delivery.broken():
                # uvicorn drops what is sent to a closed connection without a word.
                raise OSError("the client closed the connection")
            await self._pace(len(chunk), last)

    def _descriptor(self) -> int:
        """The open file's descriptor: every body but a kept one is sent from it."""
        if self.opened.fd is None:
            raise RuntimeError("a file only looked at has no descriptor to send from")
        return self.opened.fd

    async def _pace(self, nbytes: int, last: bool) -> None:
        if self.pacer is not None:
            await self.pacer(nbytes, not last)


def head_response(opened: Opened, plan: Plan) -> Response:
    """The headers a GET would get, without its body."""
    response = Response()
    response.raw_headers = list(_headers(opened, plan, ""))
    return response


def not_satisfiable(opened: Opened) -> Response:
    """416: no byte of the file was asked for, or the Range header cannot be parsed."""
    headers = {**NO_STORE, "Content-Range": f"bytes */{opened.size}"}
    return Response(status_code=416, headers=headers)


def _content_type(name: str) -> str:
    kind = media_type(name)
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind  # as Starlette does


def _part_head(boundary: str, name: str, start: int, end: int, size: int) -> bytes:
    return (
        f"\r\n--{boundary}\r\nContent-Type: {_content_type(name)}\r\n"
        f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n"
    ).encode()


def _length(name: str, plan: Plan, boundary: str) -> int:
    if not boundary:
        return plan.nbytes
    heads = sum(len(_part_head(boundary, name, s, e, plan.size)) for s, e in plan.spans)
    return plan.nbytes + heads + len(f"\r\n--{boundary}--\r\n")


def _headers(opened: Opened, plan: Plan, boundary: str) -> Sequence[tuple[bytes, bytes]]:
    if boundary:  # a new boundary every time: nothing to keep
        return _build(opened.name, opened.version, plan, boundary)
    return _kept_headers(opened.name, opened.version, plan)


@lru_cache(maxsize=1024)
def _kept_headers(name: str, version: Version, plan: Plan) -> zerocopy.Head:
    return zerocopy.Head(_build(name, version, plan, ""))


def _build(name: str, version: Version, plan: Plan, boundary: str) -> list[tuple[bytes, bytes]]:
    headers = {
        **DOWNLOAD_HEADERS,
        "Content-Type": _content_type(name),
        "Content-Disposition": content_disposition(name),
        "Content-Length": str(_length(name, plan, boundary)),
        "Accept-Ranges": "bytes",
        "ETag": etag(version),
        "Last-Modified": last_modified(version),
    }
    if boundary:
        headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    elif plan.status == 206:
        start, end = plan.spans[0]
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{plan.size}"
    return [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
