"""The gateway application. ``create_app()`` builds it; nothing happens at import time."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from gateway import api, housekeeping
from gateway.access import AccessLog, RedactTokens
from gateway.download import download
from gateway.files import Files
from gateway.pages import Pages
from gateway.ratelimit import ClientRateLimit, limit_rate
from sesame import __version__
from sesame.errors import FileMissing, LinkError, LinkInvalid, Unavailable
from sesame.logs import configure_logging
from sesame.service import Service
from sesame.settings import Settings, load_settings

DESCRIPTION = """Signed download links that open for a while and then close.

The API makes, reads and revokes links for bots and scripts. Every call but the QR code
needs an API key (`sesame apikey create NAME`) as `Authorization: Bearer ssk_...`; a client
that sends wrong keys too often is refused with 429 for a while (SESAME_API_AUTH_FAILURES).
Recipients open links at `GET /d/{token}`, which is not an API call and not listed here.
"""


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The gateway for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    service = service or Service.from_settings(settings)
    app = FastAPI(
        title="Sesame gateway",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        # Sesame sets up no OpenTelemetry, and FastAPI's own looks for its providers on every
        # request: about 20 µs of a small download's 300, measured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.service = service
    app.state.pages = pages = Pages()
    app.state.rate_limit = (
        ClientRateLimit(settings.rate_limit, settings.resolved_store_url)
        if settings.rate_limit
        else None
    )
    # Offloaded bodies are sent by nginx: none is worth keeping here.
    kept = 0 if settings.offload == "nginx" else int(settings.memory_file_size)
    app.state.files = Files(service.catalog, kept)
    configure_logging()
    _install_log_filter()
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

    app.add_exception_handler(LinkError, link_error)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(FileMissing, file_missing)
    api.install(app)  # before the download routes: /d/{token}/qr.png is not a download
    inner = None
    if settings.wechat_token is not None:
        # Imported only when WeChat is on: wechatpy and its crypto cost each gateway process
        # about 16 MB of memory, measured.
        from gateway import wechat

        wechat.install(app)
        inner = wechat.lifespan
    app.router.lifespan_context = housekeeping.lifespan(inner)
    for path in ("/d/{token:path}", "/api/get_file/{token:path}"):
        # A plain Starlette route: FastAPI's per-request parameter solving is a quarter of a
        # small download's time, and this route needs none of it.
        app.router.add_route(path, _download, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/healthz", _healthz, methods=["GET"], summary="Is the gateway up?")
    app.add_api_route("/healthz", _healthz, methods=["HEAD"], include_in_schema=False)
    return app


async def _download(request: Request) -> Response:
    await limit_rate(request)
    return await download(request, request.path_params["token"])


async def _healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


def _install_log_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
