"""The way of a download: admit the link, count it fairly, stream the file, log the request."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.types import Message, Receive, Scope, Send

from gateway.disposition import content_disposition
from gateway.pages import NO_STORE
from sesame.catalog import media_type
from sesame.errors import LinkExhausted, LinkRevoked
from sesame.models import DownloadEvent, Link, Outcome
from sesame.service import Service

log = logging.getLogger("sesame.gateway")

DOWNLOAD_HEADERS = {**NO_STORE, "Content-Security-Policy": "default-src 'none'; sandbox"}

Finish = Callable[[int, int, bool], None]


class TrackedFileResponse(FileResponse):
    """A Range-aware file response that reports, once the body is done or abandoned, its
    status, the bytes it sent and whether the body was sent in full."""

    chunk_size = 256 * 1024

    def __init__(self, path: Path, stat_result: os.stat_result, name: str, on_finish: Finish):
        super().__init__(
            path,
            stat_result=stat_result,
            media_type=media_type(name),
            headers={**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(name)},
        )
        self.on_finish = on_finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, sent, done = 0, 0, False

        async def tracking_send(message: Message) -> None:
            nonlocal status, sent, done
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                done = not message.get("more_body", False)
            await send(message)

        try:
            await super().__call__(scope, receive, tracking_send)
        finally:
            self.on_finish(status, sent, done)


def counts_as_download(request: Request) -> bool:
    """A GET that starts at byte 0 takes a download; HEAD and resumptions never do."""
    if request.method != "GET":
        return False
    range_header = request.headers.get("range", "").replace(" ", "").lower()
    return not range_header or range_header.startswith(("bytes=0-", "bytes=0,"))


async def download(request: Request, token: str) -> Response:
    """``GET|HEAD /d/{token}``: the file, or an error the exception handler renders."""
    service: Service = request.app.state.service
    try:
        link = service.admit(token)
        counted = counts_as_download(request)
        if counted:
            service.claim(link)
    except (LinkRevoked, LinkExhausted) as exc:
        _record(service, request, exc.link_id or "", 410, 0, Outcome.REFUSED)
        raise
    try:
        path = service.file_path(link)
        stat_result = path.stat()
    except Exception:
        if counted:
            service.release(link)
        raise
    return TrackedFileResponse(
        path, stat_result, link.file, _finisher(service, request, link, counted)
    )


def _finisher(service: Service, request: Request, link: Link, counted: bool) -> Finish:
    def finish(status: int, sent: int, done: bool) -> None:
        completed = done and status in (200, 206)
        if counted and not completed:
            service.release(link)
        if request.method == "HEAD":
            outcome = Outcome.HEAD
        elif status not in (200, 206):
            outcome = Outcome.REFUSED
        else:
            outcome = Outcome.COMPLETED if completed else Outcome.ABORTED
        _record(service, request, link.id, status, sent, outcome)
        log.info("link %s: %s %s, %d bytes, %s", link.id, request.method, status, sent, outcome)

    return finish


def _record(
    service: Service, request: Request, link_id: str, status: int, sent: int, outcome: Outcome
) -> None:
    service.record(
        DownloadEvent(
            link_id=link_id,
            at=service.clock(),
            client_ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
            status=status,
            bytes_sent=sent,
            outcome=outcome,
        )
    )
