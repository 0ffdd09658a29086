"""The gateway's access log: one line per request, written once the answer has gone, with
the client, the request line (a token cut to its first 8 characters), the status and, for a
download, what became of it. The Procfile turns uvicorn's own access log off: a second line
per request cost about a fifth of a small download's time, measured."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sesame.logs import Lines

lines = Lines("sesame.access")

# Where a download leaves itself for the line (the request's state: its str() is what the
# line says of it), and an answer its status.
DOWNLOAD_NOTE = "sesame.download"
STATUS_NOTE = "sesame.status"
MAX_TARGET = 512  # characters of a request's path and query the line keeps

# A download path, however written (/d//T, //D/T, /api/get_file/T): its first 8 characters.
_TOKEN_IN_PATH = re.compile(r"(/(?:d|api/get_file)/+[^/?#\s\"]{0,8})[^/?#\s\"]*", re.IGNORECASE)
# Anything else shaped like a token (three dotted parts), wherever it is: /x/T, /d/x/T.
_TOKEN_SHAPED = re.compile(r"([A-Za-z0-9_-]{8})[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_QUERY = re.compile(r"\?([^\s\"#]*)")
# What could end or fake a line, or hide what follows, in a terminal or a log viewer.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A download's path as a link writes it (no query): the token's first 8 characters kept.
_PLAIN_DOWNLOAD = re.compile(r"(/d/[A-Za-z0-9_.-]{0,8})[A-Za-z0-9_.-]*")
# The characters of a path that stay as they are; the rest is written %XX, as on the wire.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def redact(text: str) -> str:
    """``text`` with control characters escaped, every token in a download path cut to its
    first 8 characters, and every value of a query string too (a token may be put there)."""
    text = _CONTROL.sub(_escape, text)
    text = _TOKEN_IN_PATH.sub(_cut, text)
    text = _TOKEN_SHAPED.sub(_cut, text)
    return _QUERY.sub(_cut_query, text)


def _cut(match: re.Match[str]) -> str:
    return match[1] + "…"  # a function: re's template ("\\1…") is parsed again on every call


def _cut_query(match: re.Match[str]) -> str:
    items = []
    for item in match[1].split("&"):
        name, equals, value = item.partition("=")
        items.append(_clip(name, 16) + equals + _clip(value, 8) if equals else _clip(item, 8))
    return "?" + "&".join(items)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match[0]):02x}" if ord(match[0]) < 0x100 else f"\\u{ord(match[0]):04x}"


class AccessLog:
    """ASGI middleware writing the access line of each HTTP request. ``noted``: the app
    leaves its answer's status in the request's state itself (``note_status``) as the
    answer starts, so its messages need not pass through here."""

    def __init__(self, app: ASGIApp, noted: bool = False) -> None:
        self.app = app
        self.noted = noted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, receive, send if self.noted else noting(scope, send))
        finally:
            # 500: what the server answers if the app fails before its own answer.
            status = scope.get("state", {}).get(STATUS_NOTE, 500)
            lines.info(f'{_client(scope)} - "{_request_line(scope)}" {status}{_note(scope)}')


def note_status(scope: Scope, status: int) -> None:
    """Say, for the access line, that the answer to ``scope`` starts with ``status``."""
    scope.setdefault("state", {})[STATUS_NOTE] = status


def noting(scope: Scope, send: Send) -> Send:
    """``send``, noting the status of the answer's start for the access line."""

    async def noting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            note_status(scope, message["status"])
        await send(message)

    return noting_send


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
    plain = (
        None
        if scope.get("query_string") or scope["method"] not in ("GET", "HEAD")
        else _PLAIN_DOWNLOAD.fullmatch(scope["path"])
    )
    if plain is not None:  # the common case, written as _any_request_line would, quicker
        return f"{scope['method']} {plain[1]}… HTTP/{scope.get('http_version', '1.1')}"
    return _any_request_line(scope)


def _any_request_line(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    # The path as the client wrote it, %-encoded: a space (%20) cannot hide a token's end.
    path = quote(scope["path"], safe=_PATH_SAFE)
    target = _clip(redact(path + ("?" + query.decode("latin-1") if query else "")), MAX_TARGET)
    method = _CONTROL.sub(_escape, _clip(str(scope["method"]), 16))
    return f"{method} {target} HTTP/{scope.get('http_version', '1.1')}"


def _note(scope: Scope) -> str:
    note: Any = scope.get("state", {}).get(DOWNLOAD_NOTE)
    return f" - {note}" if note else ""
