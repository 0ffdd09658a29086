"""The HTTP API for bots and scripts: make, read and revoke links with an API key.

Every route ends in one ``Service`` method; this module only turns HTTP into calls and
Sesame's errors into JSON answers (in one place, ``_problems``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from gateway.pages import NO_STORE
from gateway.throttle import AuthThrottle
from sesame import qr
from sesame.errors import ApiKeyInvalid, FileMissing, InvalidInput, LinkNotFound, SesameError
from sesame.lifetimes import MAX_SECONDS
from sesame.models import ApiKey, SharedLink, utc
from sesame.service import MAX_DOWNLOADS, Service


class LinkRequest(BaseModel):
    """What a new link should be."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        description="A file inside SESAME_FILES_DIR, as `sesame files` names it.",
        examples=["InstMsiW.exe"],
    )
    lifetime: (
        Annotated[str, Field(max_length=32)] | Annotated[int, Field(ge=1, le=MAX_SECONDS)] | None
    ) = Field(
        default=None,
        description="How long the link works: `90s`, `10m`, `2h`, `7d`, `1h30m`, or seconds."
        " Default: SESAME_DEFAULT_LIFETIME; at most SESAME_MAX_LIFETIME.",
        examples=["10m"],
    )
    max_downloads: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DOWNLOADS,
        description="Complete downloads allowed; none for no limit.",
    )
    recipient: str | None = Field(
        default=None, max_length=500, description="Who the link is for (kept in the log)."
    )
    note: str | None = Field(default=None, max_length=500, description="A note for the owner.")
    landing: bool = Field(
        default=False,
        description="Browsers see a page with the file's name, size, SHA-256 and time left,"
        " and a download button, before the download.",
    )


class LinkOut(BaseModel):
    """A link as the owner sees it."""

    id: str = Field(description="The link's id, for GET and DELETE.")
    url: str = Field(description="The link to hand out.")
    qr_url: str = Field(description="A PNG QR code of `url`, valid while the link is.")
    file: str
    status: Literal["active", "expired", "revoked", "used up"]
    created_at: datetime
    expires_at: datetime
    max_downloads: int | None
    downloads: int = Field(description="Complete downloads so far.")
    bytes_served: int
    recipient: str | None
    note: str | None
    revoked_at: datetime | None
    landing: bool


class Problem(BaseModel):
    """Why a request was refused."""

    error: str = Field(
        description="`unauthorized`, `rate_limited`, `not_found`, `file_missing` or"
        " `invalid_input`."
    )
    message: str = Field(description="A sentence for a person.")


class ApiProblem(Exception):
    """An API request refused with ``status``; rendered as a Problem."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers


# Sesame's errors as API answers: the one place where they become statuses.
_STATUS: list[tuple[type[SesameError], int, str]] = [
    (LinkNotFound, 404, "not_found"),
    (FileMissing, 422, "file_missing"),
    (InvalidInput, 422, "invalid_input"),
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API key",
    description="A key made with `sesame apikey create NAME` (or the dashboard),"
    " sent as `Authorization: Bearer ssk_...`.",
)
Responses = dict[int | str, dict[str, Any]]
_REFUSALS: Responses = {
    401: {"model": Problem, "description": "No API key, or not a valid one."},
    429: {
        "model": Problem,
        "description": "Too many failed attempts from this client; see Retry-After.",
    },
    422: {"model": Problem, "description": "A value is not acceptable, or the file is unknown."},
}
_TOKEN_PARAMETER = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The link's token: the part of its URL after /d/.",
}
LinkId = Annotated[str, Path(description="The link's id.", max_length=64)]


@contextmanager
def _problems() -> Iterator[None]:
    try:
        yield
    except SesameError as exc:
        for kind, status, error in _STATUS:
            if isinstance(exc, kind):
                raise ApiProblem(status, error, str(exc)) from exc
        raise


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's API key. Refuses (429) a client with too many recent failures before
    looking at its key, and counts every missing or wrong key as a failure (401)."""
    throttle: AuthThrottle = request.app.state.throttle
    client = _client(request)
    wait = throttle.retry_after(client)
    if wait:
        raise ApiProblem(
            429,
            "rate_limited",
            f"Too many failed attempts; try again in {wait} seconds.",
            {"Retry-After": str(wait)},
        )
    service: Service = request.app.state.service
    try:
        if credentials is None:
            raise ApiKeyInvalid("An API key is needed: Authorization: Bearer <key>.")
        return service.authenticate(credentials.credentials)
    except ApiKeyInvalid as exc:
        throttle.failed(client)
        raise ApiProblem(
            401, "unauthorized", str(exc), {"WWW-Authenticate": 'Bearer realm="sesame"'}
        ) from None


def _out(service: Service, shared: SharedLink) -> LinkOut:
    link = shared.link
    return LinkOut(
        id=link.id,
        url=shared.url,
        qr_url=shared.url + "/qr.png",
        file=link.file,
        status=link.status(service.clock()).value,
        created_at=utc(link.created_at),
        expires_at=utc(link.expires_at),
        max_downloads=link.max_downloads,
        downloads=link.downloads,
        bytes_served=link.bytes_served,
        recipient=link.recipient,
        note=link.note,
        revoked_at=utc(link.revoked_at) if link.revoked_at else None,
        landing=link.landing,
    )


def create_link(body: LinkRequest, request: Request, response: Response) -> LinkOut:
    """Make a link to a file, as `sesame link` does."""
    service: Service = request.app.state.service
    with _problems():
        shared = service.share(
            body.file, body.lifetime, body.max_downloads, body.recipient, body.note, body.landing
        )
    response.headers["Location"] = f"/api/links/{shared.link.id}"
    response.headers.update(NO_STORE)
    return _out(service, shared)


def get_link(link_id: LinkId, request: Request, response: Response) -> LinkOut:
    """One link, with its downloads so far and its status."""
    service: Service = request.app.state.service
    with _problems():
        shared = service.link(link_id)
    response.headers.update(NO_STORE)
    return _out(service, shared)


def revoke_link(link_id: LinkId, request: Request, response: Response) -> LinkOut:
    """Revoke a link: it answers 410 from the next request on. Revoking twice is harmless."""
    service: Service = request.app.state.service
    with _problems():
        service.revoke(link_id)
        shared = service.link(link_id)
    response.headers.update(NO_STORE)
    return _out(service, shared)


def qr_png(request: Request) -> Response:
    """The QR code of a link, as PNG. No key needed: it shows only the link itself, and
    only for a link Sesame signed that has not expired."""
    # The token is read here, not declared, so that no impossible 422 is documented.
    token: str = request.path_params["token"]
    service: Service = request.app.state.service
    service.signer.verify(token)  # LinkInvalid (404) or LinkExpired (410), like the link
    url = f"{service.settings.public_url}/d/{token}"
    headers = {**NO_STORE, "Cache-Control": "private, max-age=300"}
    return Response(qr.png(url), media_type="image/png", headers=headers)


def router() -> APIRouter:
    """The API's routes; ``install`` adds them to an app."""
    routes = APIRouter(tags=["links"], responses=_REFUSALS, dependencies=[Depends(api_key)])
    routes.add_api_route(
        "/api/links",
        create_link,
        methods=["POST"],
        status_code=201,
        response_model=LinkOut,
        summary="Make a link",
        response_description="The new link; its address is also in Location.",
    )
    not_found: Responses = {404: {"model": Problem, "description": "No link has this id."}}
    routes.add_api_route(
        "/api/links/{link_id}",
        get_link,
        methods=["GET"],
        response_model=LinkOut,
        summary="Read a link",
        response_description="The link.",
        responses=not_found,
    )
    routes.add_api_route(
        "/api/links/{link_id}",
        revoke_link,
        methods=["DELETE"],
        response_model=LinkOut,
        summary="Revoke a link",
        response_description="The link, now revoked.",
        responses=not_found,
    )
    return routes


def install(app: FastAPI) -> None:
    """Add the API and the QR code route to ``app``, before the download routes."""
    service: Service = app.state.service
    settings = service.settings
    app.state.throttle = AuthThrottle(
        settings.api_auth_failures, settings.resolved_store_url, settings.store_timeout
    )
    app.include_router(router())
    app.add_api_route(
        "/d/{token}/qr.png",
        qr_png,
        methods=["GET"],
        tags=["links"],
        summary="A link's QR code",
        response_class=Response,
        openapi_extra={"parameters": [_TOKEN_PARAMETER]},
        responses={
            200: {"content": {"image/png": {}}, "description": "The QR code."},
            404: {"description": "Not a link Sesame signed."},
            410: {"description": "The link has expired."},
        },
    )

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        body = Problem(error=exc.error, message=exc.message).model_dump()
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        return await problem(request, ApiProblem(422, "invalid_input", _explain(exc)))

    app.add_exception_handler(ApiProblem, problem)
    app.add_exception_handler(RequestValidationError, invalid)


def _explain(exc: RequestValidationError) -> str:
    """Pydantic's complaints as one sentence: ``max_downloads: Input should be ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "path"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts) or "The request is not valid."
