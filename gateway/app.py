"""The gateway application. ``create_app()`` builds it; nothing happens at import time."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from gateway import api, connections, housekeeping
from gateway.access import AccessLog, RedactTokens
from gateway.download import download
from gateway.files import Files
from gateway.frontdoor import Gateway
from gateway.pages import Pages
from gateway.ratelimit import ClientRateLimit
from gateway.reports import listen
from sesame import __version__
from sesame.errors import FileMissing, LinkError, LinkInvalid, StoreUnavailable, Unavailable
from sesame.logs import configure_logging
from sesame.service import Service
from sesame.settings import Settings, load_settings

DESCRIPTION = """Signed download links that open for a while and then close.

The API makes, reads and revokes links for bots and scripts. Every call but the QR code
needs an API key (`sesame apikey create NAME`) as `Authorization: Bearer ssk_...`; a client
that sends wrong keys too often is refused with 429 for a while (SESAME_API_AUTH_FAILURES).
Recipients open links at `GET /d/{token}`, which is not an API call and not listed here.
"""

log = logging.getLogger("sesame.gateway")

# Seconds /healthz waits for the store before it says the store is down: it must answer within
# 100 ms whatever the store does. Its own few threads, so busy downloads cannot starve it.
HEALTH_WAIT = 0.06
HEALTH_THREADS = 4
STOP_WAIT = 10.0  # seconds a stop keeps trying to write what the store holds back
STOP_RETRY = 0.5  # seconds between those tries
GC_YOUNG = 20_000  # new objects between the collector's runs (Python's default: 700)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The gateway for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    service = service or Service.from_settings(settings)
    app = Gateway(
        title="Sesame gateway",
        version=__version__,
        description=DESCRIPTION,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; the gateway serves no
        # third-party script, so only the description itself is served, at /openapi.json.
        docs_url=None,
        redoc_url=None,
        # Sesame sets up no OpenTelemetry, and FastAPI's own looks for its providers on every
        # request: about 20 µs of a small download's 300, measured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    app.state.pages = pages = Pages()
    app.state.rate_limit = (
        ClientRateLimit(settings.rate_limit, settings.resolved_store_url, settings.store_timeout)
        if settings.rate_limit
        else None
    )
    # Offloaded bodies are sent by nginx: none is worth keeping here.
    kept = 0 if settings.offload == "nginx" else int(settings.memory_file_size)
    app.state.files = Files(service.catalog, kept)
    configure_logging()
    _install_log_filter()
    connections.configure(settings)
    app.add_middleware(AccessLog)

    async def link_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LinkError)
        return pages.link_error(request, exc)

    async def file_missing(request: Request, exc: Exception) -> Response:
        return pages.link_error(
            request, LinkInvalid("The file behind this link is no longer available.")
        )

    async def unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Unavailable)
        return pages.unavailable(request, exc, service.clock())

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StoreUnavailable)
        log.warning("the store failed in %s: %s", exc.operation, exc.reason)
        # The API answers JSON whatever the client accepts, as its other refusals do.
        return pages.store_unavailable(request, exc, request.url.path.startswith("/api/"))

    app.add_exception_handler(LinkError, link_error)
    app.add_exception_handler(StoreUnavailable, store_unavailable)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(FileMissing, file_missing)
    api.install(app)  # before the download routes: /d/{token}/qr.png is not a download
    if settings.wechat_token is not None:
        # Imported only when WeChat is on: wechatpy and its crypto cost each gateway process
        # about 16 MB of memory, measured.
        from gateway import wechat

        wechat.install(app)
    app.router.lifespan_context = housekeeping.lifespan(_lifespan)
    for path in ("/d/{token:path}", "/api/get_file/{token:path}"):
        # A plain Starlette route: FastAPI's per-request parameter solving is a quarter of a
        # small download's time, and this route needs none of it.
        app.router.add_route(path, _download, methods=["GET", "HEAD"], include_in_schema=False)
    # What this server is, for someone who opens its bare address (the dashboard points there).
    app.router.add_route("/", _home, methods=["GET", "HEAD"], include_in_schema=False)
    for method in ("GET", "HEAD"):
        listed = method == "GET"
        app.add_api_route(
            "/healthz",
            _healthz,
            methods=[method],
            include_in_schema=listed,
            summary="Can the gateway serve links (is its store answering)?",
            responses={503: {"description": "The store failed or did not answer in time."}},
        )
        app.add_api_route(
            "/livez",
            _livez,
            methods=[method],
            include_in_schema=listed,
            summary="Is the gateway process running? (It looks at nothing else.)",
        )
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """What runs beside the requests: WeChat's warm-up, nginx's download reports."""
    settings: Settings = app.state.service.settings
    threshold = _settle_garbage_collector()
    reports = None
    if settings.offload == "nginx" and settings.offload_report:
        reports = await listen(settings.offload_report, app.state.service.downloads)
    try:
        if settings.wechat_token is not None:
            from gateway import wechat

            async with wechat.lifespan(app):
                yield
        else:
            yield
    finally:
        if reports is not None:
            reports.close()
        await _flush(app.state.service)
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def _flush(service: Service) -> None:
    """What the store let in and holds back (sesame.store.held), written as the gateway stops,
    trying for up to STOP_WAIT while the store fails: a clean stop loses no download's row."""
    deadline = time.monotonic() + STOP_WAIT
    while True:
        try:
            return await anyio.to_thread.run_sync(service.store.flush)
        except StoreUnavailable as exc:
            if time.monotonic() >= deadline:
                log.error("the last downloads' rows could not be written: %s", exc.reason)
                return
            log.warning("the last downloads' rows wait for the store: %s", exc.reason)
            await anyio.sleep(STOP_RETRY)


def _settle_garbage_collector() -> tuple[int, int, int]:
    """Leave what start-up made out of the collector's sight, and collect less often.

    Python's cycle collector ran every 700 new objects, each time walking the tens of
    thousands that start-up left (the app, its routes, pydantic's schemas): about a tenth of
    a small download's time under wrk, measured. Frozen, they are never walked again; and a
    young generation of GC_YOUNG objects between collections costs a few MB at most.
    Returns the thresholds before, for the end of the app's life."""
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, *threshold[1:])
    return threshold


async def _download(request: Request) -> Response:
    return await download(request, request.path_params["token"])


async def _home(request: Request) -> Response:
    pages: Pages = request.app.state.pages
    return pages.home(request)


async def _healthz(request: Request) -> Response:
    """200 when the store answers within HEALTH_WAIT, else 503 saying why. The store is asked
    off the event loop, so a stuck store never holds up this answer or anyone else's."""
    service: Service = request.app.state.service
    problem = None
    limiter = getattr(request.app.state, "health_threads", None)
    if limiter is None:
        limiter = request.app.state.health_threads = anyio.CapacityLimiter(HEALTH_THREADS)
    try:
        with anyio.fail_after(HEALTH_WAIT):
            await anyio.to_thread.run_sync(
                service.store.ping, abandon_on_cancel=True, limiter=limiter
            )
    except TimeoutError:
        problem = f"the store did not answer within {HEALTH_WAIT * 1000:g} ms"
    except StoreUnavailable as exc:
        problem = exc.reason
    if problem is None:
        return JSONResponse({"status": "ok", "version": __version__, "store": "ok"})
    body = {"status": "unavailable", "version": __version__, "store": problem}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


async def _livez() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


def _install_log_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
