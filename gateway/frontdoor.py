"""The gateway's outermost layer: a download (``GET|HEAD /d/TOKEN``, or the seed's
``/api/get_file/TOKEN``) goes straight to its handler; every other request goes through
FastAPI to its route.

That stack (its error, telemetry, body-limit, exception and exit-stack middleware, then the
router trying each route in turn) cost about as much as a small download's own work,
measured under wrk, and a download needs none of it: here its errors become the pages the
app's exception handlers make, and its access line is written as for any other request.
A path with a slash after the token (``/d/TOKEN/qr.png``) is not a download and goes on.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gateway.access import AccessLog, noting
from gateway.download import download
from gateway.responses import DownloadResponse

PREFIXES = ("/d/", "/api/get_file/")
TOKEN = "sesame.token"  # where the front door leaves a download's token in its scope


class Gateway(FastAPI):
    """FastAPI, with downloads let in at the front door (see the module's docstring): before
    FastAPI's and Starlette's own ``__call__`` too, which a download needs nothing of."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.downloads = AccessLog(self._download, noted=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _token(scope, self.root_path) if scope["type"] == "http" else None
        if token and scope["method"] in ("GET", "HEAD"):
            if self.root_path:
                scope["root_path"] = self.root_path  # as FastAPI's own __call__ would
            scope["app"] = self
            scope[TOKEN] = token
            return await self.downloads(scope, receive, send)
        await super().__call__(scope, receive, send)

    async def _download(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await download(request, scope[TOKEN])
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        # A download's own response notes its status; a page's is noted as it passes.
        await response(
            scope, receive, send if isinstance(response, DownloadResponse) else noting(scope, send)
        )

    def _handler(self, exc: Exception) -> Any:
        """The app's exception handler for ``exc`` (the nearest of its classes), if any."""
        handlers = self.exception_handlers
        return next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)


def _token(scope: Scope, root_path: str = "") -> str | None:
    """The token of a download's path (after the app's root path), or None."""
    path: str = scope["path"]
    root: str = root_path or scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    for prefix in PREFIXES:
        if path.startswith(prefix):
            token = path[len(prefix) :]
            return token if token and "/" not in token else None
    return None
