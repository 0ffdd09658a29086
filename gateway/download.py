"""The way of a download: admit the link, count it fairly, stream the file, log the request."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gateway.access import DOWNLOAD_NOTE
from gateway.files import Files
from gateway.offload import accel_redirect
from gateway.pacing import pacer
from gateway.pages import Pages
from gateway.previews import DOWNLOAD_PARAM, is_in_app_browser, is_preview, wants_landing
from gateway.responses import (
    DOWNLOAD_HEADERS,
    Finish,
    KeptBodyResponse,
    TrackedFileResponse,
)
from sesame.bandwidth import Ticket
from sesame.errors import LinkExhausted, LinkRevoked, Unavailable
from sesame.models import Access, DownloadEvent, Link, Outcome
from sesame.service import Service

T = TypeVar("T")


def requested_access(request: Request) -> Access:
    """What the request asks for, from its method and headers alone."""
    if request.method == "HEAD":
        return Access.HEAD
    if is_preview(request.headers):
        return Access.PREVIEW
    return Access.FULL if range_start(request, None) == 0 else Access.RESUME


def range_start(request: Request, size: int | None) -> int:
    """The first byte a GET asks for: 0 without a Range header or with one that cannot be
    parsed (it is then answered in full or with 400). A suffix range (``bytes=-N``) starts
    ``N`` bytes before the end, or is unknown (-1) while the size is."""
    header = request.headers.get("range", "").replace(" ", "").lower()
    if not header.startswith("bytes="):
        return 0
    first = header[len("bytes=") :].split(",", 1)[0]
    start, _, end = first.partition("-")
    try:
        if not start:
            return -1 if size is None else max(0, size - int(end))
        return max(0, int(start))
    except ValueError:
        return 0


async def download(request: Request, token: str) -> Response:
    """``GET|HEAD /d/{token}``: the file, a preview card, or an error the app renders."""
    service: Service = request.app.state.service
    access = requested_access(request)
    link = _refusing(service, request, lambda: service.downloads.admit(token, access))
    files: Files = request.app.state.files
    served = files.get(link.file)
    path, stat = served.path, served.stat
    if access is Access.PREVIEW:
        _record(service, request, link.id, 200, 0, Outcome.PREVIEW)
        pages: Pages = request.app.state.pages
        info = service.catalog.info(link.file)
        if is_in_app_browser(request.headers):
            url = service.settings.public_url + request.url.path
            return pages.open_in_browser(url, link, info)
        return pages.preview(request, link, info)
    if access is Access.FULL and link.landing and wants_landing(request):
        return _landing(service, request, link)
    if access is Access.HEAD:
        return _head(service, request, link, path, stat)
    start = range_start(request, stat.st_size)
    access = Access.FULL if start == 0 else Access.RESUME
    reserved = max(0, stat.st_size - start)
    offloaded = service.settings.offload == "nginx"
    ranged = "range" in request.headers
    # A capped link's body is paced from the file, even a small one.
    body = None if offloaded or link.rate or ranged else served.body
    if offloaded or body is not None:
        # Over once let in: handed to nginx, which the gateway never hears from again (so
        # it is logged as sent in full, see the README), or a kept body that leaves in one
        # write. Settled and logged in the same trip to the store that lets it in.
        status = 206 if ranged else 200
        counted = access is Access.FULL
        event = _event(service, request, link.id, status, reserved, Outcome.COMPLETED, counted)
        _begin(service, request, link, access, reserved, stat.st_size, event)
        _note(request, link, access, event)
        if body is None:
            return _handed_to_nginx(service, link, path)
        return KeptBodyResponse(path, stat, link.file, body)
    ticket = _begin(service, request, link, access, reserved, stat.st_size)
    finish = _finisher(service, request, link, access, ticket)
    return TrackedFileResponse(path, stat, link.file, finish, pacer(service, link, ticket))


def _head(
    service: Service, request: Request, link: Link, path: Path, stat: os.stat_result
) -> Response:
    """A HEAD sends no body: nothing to let in or settle, only a log row."""
    if service.settings.offload == "nginx":
        _record(service, request, link.id, 200, 0, Outcome.HEAD)
        return _handed_to_nginx(service, link, path)
    finish = _finisher(service, request, link, Access.HEAD, None)
    return TrackedFileResponse(path, stat, link.file, finish)


def _begin(
    service: Service,
    request: Request,
    link: Link,
    access: Access,
    nbytes: int,
    file_size: int,
    event: DownloadEvent | None = None,
) -> Ticket:
    """Downloads.begin, with its refusals logged (see _refusing)."""

    def step() -> Ticket:
        return service.downloads.begin(link, access, nbytes, file_size, event)

    return _refusing(service, request, step, link.id)


def _handed_to_nginx(service: Service, link: Link, path: Path) -> Response:
    """Offload: an empty answer that tells nginx which file to send. nginx paces a capped
    link itself (X-Accel-Limit-Rate)."""
    headers = dict(DOWNLOAD_HEADERS)
    if link.rate:
        headers["X-Accel-Limit-Rate"] = str(link.rate)
    return accel_redirect(path, service.catalog.root, link.file, headers)


def _landing(service: Service, request: Request, link: Link) -> Response:
    """The landing page: shown, logged, never counted. Its button asks for ``?dl=1``."""
    _record(service, request, link.id, 200, 0, Outcome.LANDING)
    pages: Pages = request.app.state.pages
    info = service.catalog.info(link.file)
    remaining = max(0, link.expires_at - int(service.clock()))
    # Relative, so that the button works behind a proxy that serves Sesame under a prefix.
    return pages.landing(link, info, remaining, f"?{DOWNLOAD_PARAM}=1")


def _refusing(service: Service, request: Request, step: Callable[[], T], link_id: str = "") -> T:
    """Run ``step``; a link found revoked or used up, or a download of ``link_id`` refused to
    protect the bandwidth, is logged as a refused request."""
    try:
        return step()
    except (LinkRevoked, LinkExhausted) as exc:
        _record(service, request, exc.link_id or "", 410, 0, Outcome.REFUSED)
        raise
    except Unavailable as exc:
        _record(service, request, link_id, exc.status, 0, Outcome.REFUSED)
        raise


def _finisher(
    service: Service,
    request: Request,
    link: Link,
    access: Access,
    ticket: Ticket | None,
) -> Finish:
    def finish(status: int, sent: int, done: bool) -> None:
        completed = done and status in (200, 206)
        if access is Access.HEAD:
            outcome = Outcome.HEAD
        elif status not in (200, 206):
            outcome = Outcome.REFUSED
        else:
            outcome = Outcome.COMPLETED if completed else Outcome.ABORTED
        counted = access is Access.FULL and outcome is Outcome.COMPLETED
        event = _event(service, request, link.id, status, sent, outcome, counted)
        if ticket is None:  # a HEAD
            service.downloads.record(event)
        else:
            service.downloads.end(ticket, sent, completed, event)
        _note(request, link, access, event)

    return finish


def _note(request: Request, link: Link, access: Access, event: DownloadEvent) -> None:
    """What the request's access line says of the download (see gateway.access)."""
    note = f"link {link.id} {access}, {event.bytes_sent} bytes, {event.outcome}"
    request.scope.setdefault("state", {})[DOWNLOAD_NOTE] = note


def _record(
    service: Service,
    request: Request,
    link_id: str,
    status: int,
    sent: int,
    outcome: Outcome,
    counted: bool = False,
) -> None:
    service.downloads.record(_event(service, request, link_id, status, sent, outcome, counted))


def _event(
    service: Service,
    request: Request,
    link_id: str,
    status: int,
    sent: int,
    outcome: Outcome,
    counted: bool,
) -> DownloadEvent:
    return DownloadEvent(
        link_id=link_id,
        at=service.clock(),
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        status=status,
        bytes_sent=sent,
        outcome=outcome,
        counted=counted,
    )
