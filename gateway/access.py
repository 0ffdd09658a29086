"""The gateway's access log: one line per request, written once the answer has gone, with
the client, the request line (a token cut to its first 8 characters), the status and, for a
download, what became of it. The Procfile turns uvicorn's own access log off: a second line
per request cost about a fifth of a small download's time, measured."""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("sesame.access")

# Where a download leaves its outcome for the line (the request's state).
DOWNLOAD_NOTE = "sesame.download"

_TOKEN_IN_PATH = re.compile(r"(/(?:d|api/get_file)/[^/?#\s]{0,8})[^/?#\s\"]*")


def redact(text: str) -> str:
    """``text`` with every token in a download path cut to its first 8 characters."""
    return _TOKEN_IN_PATH.sub(_cut, text)


def _cut(match: re.Match[str]) -> str:
    return match[1] + "…"  # a function: re's template ("\\1…") is parsed again on every call


class AccessLog:
    """ASGI middleware writing the access line of each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500  # what the server answers if the app fails before its own answer

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            log.info('%s - "%s" %d%s', _client(scope), _request_line(scope), status, _note(scope))


class RedactTokens(logging.Filter):
    """Cuts tokens in another access log's request lines (uvicorn's, if it is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _request_line(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
    return f"{scope['method']} {redact(target)} HTTP/{scope.get('http_version', '1.1')}"


def _note(scope: Scope) -> str:
    note: Any = scope.get("state", {}).get(DOWNLOAD_NOTE)
    return f" - {note}" if note else ""
