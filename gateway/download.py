"""The way of a download, in HTTP: admit the link, open the file, plan the answer to its
Range header once, begin the download in sesame, send exactly those bytes, and settle it
with what the client acknowledged.

Everything that may touch the store or the disk runs off the event loop (``_decide`` in a
worker thread; settling and lease renewals too): a slow or locked store delays this
download, never the bodies in flight or ``/healthz``. The requests of one turn of the event
loop are decided together (gateway.offloop's Batches): one trip to a thread, and their
downloads begun in one trip to the store, each with its own answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gateway.access import DOWNLOAD_NOTE
from gateway.files import Files, Looks, Opened
from gateway.offload import accel_redirect, nginx_etag
from gateway.offloop import Batches, off_loop
from gateway.pacing import pacer
from gateway.pages import Pages
from gateway.previews import (
    DOWNLOAD_PARAM,
    first_values,
    is_in_app_browser,
    is_preview,
    wants_landing,
)
from gateway.ratelimit import ClientRateLimit
from gateway.responses import DOWNLOAD_HEADERS, DownloadResponse, head_response, not_satisfiable
from sesame import ranges
from sesame.downloads import Admitted, Download, Starting
from sesame.errors import LinkExhausted, LinkRevoked, Unavailable
from sesame.models import Link, Outcome, Visitor
from sesame.service import Service
from sesame.values import quick_init

T = TypeVar("T")
RENEWALS_PER_LEASE = 3


@dataclass(slots=True)
class _Gateway:
    """What a batch's requests need of their app: its state, read once for the batch
    (Starlette's State answers each attribute through ``__getattr__``, after a miss), the
    link records read so far, by id, and the files looked at so far, by name."""

    service: Service
    files: Files
    rate_limit: ClientRateLimit | None
    records: dict[str, Link | None]
    looks: Looks

    @classmethod
    def of(cls, request: Request, known: dict[int, _Gateway]) -> _Gateway:
        """The request's app's, from those ``known`` for the batch (by id of the app)."""
        app = request.scope["app"]
        gateway = known.get(id(app))
        if gateway is None:
            state = app.state
            gateway = known[id(app)] = cls(state.service, state.files, state.rate_limit, {}, {})
        return gateway


async def download(request: Request, token: str) -> Response:
    """``GET|HEAD /d/{token}``: the file, a preview card, or an error the app renders."""
    return await _batches((request, token))


@quick_init
@dataclass(frozen=True, slots=True)
class _Starting:
    """A download that has only its store's word to wait for (``begun``)."""

    service: Service
    request: Request
    visitor: Visitor
    opened: Opened
    plan: ranges.Plan
    starting: Starting

    def begun(self, started: Download | BaseException) -> Response:
        """The answer, once the store let the download in (or refused it: raised)."""
        try:
            if isinstance(started, BaseException):
                _note_refusal(self.service, self.visitor, started, self.starting.link.id)
                raise started
            _note(self.request, started)
            if self.service.settings.offload == "nginx":
                self.opened.close()
                return _handed_to_nginx(self.service, started, self.opened, self.plan.status == 200)
            return _response(self.service, started, self.opened, self.plan)
        except BaseException:
            self.opened.close()
            raise


def _decide_all(requests: list[tuple[Request, str]]) -> list[Response | BaseException]:
    """Everything before the bodies of a batch of requests, in a worker thread: each as
    ``_decide`` alone would, the downloads of one gateway begun in one trip to its store."""
    answers: list[Response | _Starting | BaseException] = []
    gateways: dict[int, _Gateway] = {}
    for request, token in requests:
        try:
            answers.append(_decide(request, token, _Gateway.of(request, gateways)))
        except Exception as exc:
            answers.append(exc)
    starting = [answer for answer in answers if isinstance(answer, _Starting)]
    for service in {id(each.service): each.service for each in starting}.values():
        mine = [each for each in starting if each.service is service]
        try:
            begun = service.downloads.begin_all([each.starting for each in mine])
        except Exception as exc:  # the store failed them all (each file is closed below)
            begun = [exc] * len(mine)
        decided: dict[int, Response | BaseException] = {}
        for each, started in zip(mine, begun, strict=True):
            try:
                decided[id(each)] = each.begun(started)
            except Exception as exc:
                decided[id(each)] = exc
        answers = [decided.get(id(a), a) if isinstance(a, _Starting) else a for a in answers]
    return [answer for answer in answers if not isinstance(answer, _Starting)]


_batches = Batches(_decide_all)


def _decide(request: Request, token: str, gateway: _Gateway) -> Response | _Starting:
    """One request, up to what only the store can say: its answer, or the download that
    waits for the store's word."""
    scope = request.scope
    client = scope.get("client")
    host = client[0] if client else None
    if gateway.rate_limit is not None:
        gateway.rate_limit.check(host or "")
    service = gateway.service
    headers = first_values(scope["headers"])
    visitor = Visitor(host, headers.get("user-agent"))
    get = scope["method"] == "GET"
    ranged = get and "range" in headers
    records = gateway.records
    admitted = _refusing(service, visitor, lambda: service.downloads.admit(token, ranged, records))
    looks = get and is_preview(visitor.user_agent or "", scope["headers"])
    if looks or (admitted.link.landing and not ranged and wants_landing(request)):
        return _page(service, request, admitted, visitor, looks)
    # Only a whole file that may be sent from memory needs no descriptor (see _answer).
    link = admitted.link
    descriptor = ranged or link.rate is not None
    opened = gateway.files.open(link.file, descriptor, gateway.looks)
    try:
        return _answer(service, request, headers, admitted, visitor, opened)
    except BaseException:
        opened.close()
        raise


def _answer(
    service: Service,
    request: Request,
    headers: dict[str, str],
    admitted: Admitted,
    visitor: Visitor,
    opened: Opened,
) -> Response | _Starting:
    link = admitted.link
    offloaded = service.settings.offload == "nginx"
    if request.scope["method"] == "HEAD":
        _refusing(service, visitor, admitted.check_open)
        _record(service, link.id, visitor, 200, Outcome.HEAD)
        opened.close()
        if offloaded:
            return _handed_to_nginx(service, None, opened)
        return head_response(opened, ranges.whole(opened.size))
    # Offloaded, nginx reads Range and If-Range again: plan only what it will send alike.
    if_range = headers.get("if-range")
    validators = (
        ()
        if if_range is None
        else (nginx_etag(opened.stat) if offloaded else opened.etag, opened.last_modified)
    )
    plan = ranges.plan(opened.size, headers.get("range"), if_range, validators, offloaded)
    if plan.status == 416:
        _refusing(service, visitor, admitted.check_open)
        _record(service, link.id, visitor, 416, Outcome.REFUSED)
        opened.close()
        return not_satisfiable(opened)
    # Over once let in: a kept body that leaves in one write (given back in a second trip
    # only if it turns out aborted), or a body handed to nginx that reports nothing back.
    kept = opened.body is not None and plan.status == 200 and link.rate is None
    reported = offloaded and bool(service.settings.offload_report)
    settled = (kept and not offloaded) or (offloaded and not reported)
    starting = _refusing(
        service,
        visitor,
        lambda: service.downloads.starting(admitted, plan, visitor, settled, reported),
        link.id,
    )
    return _Starting(service, request, visitor, opened, plan, starting)


def _response(service: Service, started: Download, opened: Opened, plan: ranges.Plan) -> Response:
    async def finish(delivered: int, completed: bool) -> None:
        if started.start.settled and completed:
            started.finish(delivered, completed)  # nothing to settle: no trip to the store
        else:
            await off_loop(started.finish, delivered, completed)

    async def renew(delivered: int) -> None:
        await off_loop(started.renew, delivered)

    lease = service.settings.download_lease
    return DownloadResponse(
        opened,
        plan,
        finish,
        None if started.start.settled else renew,
        lease / RENEWALS_PER_LEASE,
        pacer(started.link),
    )


def _page(
    service: Service, request: Request, admitted: Admitted, visitor: Visitor, looks: bool
) -> Response:
    """A preview card (for a bot or a prefetch) or the landing page: logged, never counted."""
    link = _refusing(service, visitor, admitted.check_open)
    pages: Pages = request.app.state.pages
    info = service.catalog.info(link.file)
    if looks:
        _record(service, link.id, visitor, 200, Outcome.PREVIEW)
        if is_in_app_browser(request.headers):
            return pages.open_in_browser(service.settings.public_url + request.url.path, link, info)
        return pages.preview(request, link, info)
    _record(service, link.id, visitor, 200, Outcome.LANDING)
    remaining = max(0, link.expires_at - int(service.clock()))
    # Relative, so that the button works behind a proxy that serves Sesame under a prefix.
    return pages.landing(link, info, remaining, f"?{DOWNLOAD_PARAM}=1")


def _handed_to_nginx(
    service: Service, started: Download | None, opened: Opened, whole: bool = True
) -> Response:
    """Offload: an empty answer that tells nginx which file to send. nginx paces a capped
    link itself (X-Accel-Limit-Rate), and reports back how the download went when
    SESAME_OFFLOAD_REPORT is set (X-Sesame-Download names it in its log)."""
    headers = dict(DOWNLOAD_HEADERS)
    if started is not None:
        if started.link.rate:
            headers["X-Accel-Limit-Rate"] = str(started.link.rate)
        if not started.start.settled:
            headers["X-Sesame-Download"] = started.start.slot_id
    return accel_redirect(opened.name, headers, whole)


def _refusing(service: Service, visitor: Visitor, step: Callable[[], T], link_id: str = "") -> T:
    """Run ``step``; if it raises a refusal, log it (see ``_note_refusal``)."""
    try:
        return step()
    except Exception as exc:
        _note_refusal(service, visitor, exc, link_id)
        raise


def _note_refusal(service: Service, visitor: Visitor, exc: BaseException, link_id: str) -> None:
    """A link found revoked or used up, or a download of ``link_id`` refused to protect the
    bandwidth, is logged as a refused request."""
    if isinstance(exc, LinkRevoked | LinkExhausted):
        _record(service, exc.link_id or "", visitor, 410, Outcome.REFUSED)
    elif isinstance(exc, Unavailable):
        _record(service, link_id, visitor, exc.status, Outcome.REFUSED)


def _note(request: Request, started: Download) -> None:
    """The download the request's access line tells of (see gateway.access): as it is
    when the line is written, once it is settled."""
    request.scope.setdefault("state", {})[DOWNLOAD_NOTE] = started


def _record(
    service: Service, link_id: str, visitor: Visitor, status: int, outcome: Outcome
) -> None:
    downloads = service.downloads
    downloads.record(downloads.event(link_id, visitor, status, 0, outcome))
