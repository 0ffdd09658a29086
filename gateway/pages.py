"""Answers for people and for programs: a bilingual HTML page, or JSON when preferred."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import mimeparse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sesame.errors import (
    BudgetSpent,
    LinkError,
    LinkExhausted,
    LinkExpired,
    LinkRevoked,
    StoreUnavailable,
    Unavailable,
)
from sesame.models import FileInfo, Link, human_size, utc

NO_STORE = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The gateway's own pages load nothing from elsewhere: their styles are inline, and their few
# scripts run only with this response's nonce.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

HOME = {
    "service": "sesame",
    "message": "A Sesame download gateway: download links shared with you open here.",
}

_TEXTS: dict[str, dict[str, str]] = {
    "invalid": {
        "title_zh": "链接无效",
        "title_en": "This link is not valid",
        "detail_zh": "这个链接不存在、不完整,或已被修改。",
        "detail_en": "This link does not exist, is incomplete, or was altered.",
    },
    "expired": {
        "title_zh": "链接已过期",
        "title_en": "This link has expired",
        "detail_zh": "这个下载链接的有效期已经结束,过期时间:",
        "detail_en": "The time this download link was valid for is over. It expired at:",
    },
    "revoked": {
        "title_zh": "链接已撤销",
        "title_en": "This link was revoked",
        "detail_zh": "分享者已撤销这个链接。",
        "detail_en": "The person who shared it has revoked this link.",
    },
    "exhausted": {
        "title_zh": "下载次数已用完",
        "title_en": "No downloads left",
        "detail_zh": "这个链接允许的下载次数已经用完。",
        "detail_en": "This link has been downloaded as many times as it allows.",
    },
    "busy": {
        "title_zh": "服务器正忙",
        "title_en": "The server is busy",
        "detail_zh": "同时进行的下载已达上限,请稍后再试。链接仍然有效,本次未计入下载次数。",
        "detail_en": "As many downloads are running as the server allows. Try again in a "
        "little while: your link still works, and this attempt did not count.",
    },
    "rate_limited": {
        "title_zh": "请求过于频繁",
        "title_en": "Too many requests",
        "detail_zh": "请稍等片刻再试。",
        "detail_en": "Please wait a moment before you try again.",
    },
    "budget": {
        "title_zh": "今日下载流量已用完",
        "title_en": "Today's download allowance is used up",
        "detail_zh": "链接仍然有效,本次未计入下载次数。流量重置时间:",
        "detail_en": "Your link still works, and this attempt did not count. "
        "Come back after the allowance resets at:",
    },
    "unavailable": {
        "title_zh": "服务暂时不可用",
        "title_en": "Temporarily unavailable",
        "detail_zh": "服务器暂时无法访问链接记录,请稍后再试。链接仍然有效,本次未计入下载次数。",
        "detail_en": "The server cannot reach its link records right now. Try again in a "
        "little while: your link still works, and this attempt did not count.",
    },
}


class Pages:
    """Renders the gateway's pages from ``gateway/templates``; built once per app."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("gateway", "templates"), autoescape=select_autoescape()
        )

    def html(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        body = self.env.get_template(template).render(csp_nonce=nonce, **context)
        headers = {**NO_STORE, "Content-Security-Policy": CSP.format(nonce=nonce)}
        return HTMLResponse(body, status_code=status, headers=headers)

    def home(self, request: Request) -> Response:
        """What the gateway's root says: what this server is, and nothing of its files or
        links; JSON for a client that prefers it."""
        if wants_json(request):
            return JSONResponse(HOME, headers=NO_STORE)
        return self.html("home.html")

    def preview(self, request: Request, link: Link, info: FileInfo) -> Response:
        """A card about the file for a preview bot or a prefetch: it takes nothing."""
        return self.html("preview.html", **_card(link, info))

    def open_in_browser(self, url: str, link: Link, info: FileInfo) -> Response:
        """For WeChat's and QQ's in-app browsers, which cannot save files: how to open the
        link ``url`` in the system browser, ready to copy. It takes nothing."""
        return self.html("open_in_browser.html", url=url, **_card(link, info))

    def landing(self, link: Link, info: FileInfo, remaining: int, download_href: str) -> Response:
        """A link's landing page: the file's details, a countdown from the ``remaining``
        seconds the server measured, and a button to ``download_href``. It takes nothing."""
        left = None if link.max_downloads is None else max(0, link.max_downloads - link.downloads)
        return self.html(
            "landing.html",
            remaining=remaining,
            remaining_text=countdown(remaining),
            download_href=download_href,
            downloads_left=left,
            **_card(link, info),
        )

    def link_error(self, request: Request, exc: LinkError) -> Response:
        """The answer for a link that cannot be downloaded: 404 if invalid, 410 if gone."""
        status = 404 if exc.code == "invalid" else 410
        if wants_json(request):
            return JSONResponse(_json_body(exc), status_code=status, headers=NO_STORE)
        return self.html("error.html", status, code=exc.code, when=_when(exc), **_TEXTS[exc.code])

    def unavailable(self, request: Request, exc: Unavailable, now: float) -> Response:
        """The answer for a request refused to protect the bandwidth: 503 or 429, with
        Retry-After, and for a spent budget the time it resets (UTC, and how long from ``now``)."""
        headers = {**NO_STORE, "Retry-After": str(exc.retry_after)}
        when = exc.resets_at if isinstance(exc, BudgetSpent) else None
        if wants_json(request):
            body: dict[str, Any] = {
                "error": exc.code,
                "message": str(exc),
                "retry_after": exc.retry_after,
            }
            if when:
                body["resets_at"] = when.isoformat()
            return JSONResponse(body, status_code=exc.status, headers=headers)
        page = self.html(
            "error.html",
            exc.status,
            when=when,
            relative=_relative(exc.retry_after) if when else None,
            retry=True,
            code=exc.code,
            **_TEXTS[exc.code],
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page

    def store_unavailable(
        self, request: Request, exc: StoreUnavailable, json: bool = False
    ) -> Response:
        """The answer while the store fails: 503 with Retry-After, as JSON if ``json`` or if
        the client prefers it; the cause stays in the log."""
        headers = {**NO_STORE, "Retry-After": str(exc.retry_after)}
        if json or wants_json(request):
            body = {
                "error": exc.code,
                "message": "The server cannot reach its link records right now; try again later.",
                "retry_after": exc.retry_after,
            }
            return JSONResponse(body, status_code=exc.status, headers=headers)
        page = self.html("error.html", exc.status, retry=True, code=exc.code, **_TEXTS[exc.code])
        page.headers["Retry-After"] = str(exc.retry_after)
        return page


def _relative(seconds: int) -> str:
    """``12600`` as ``3 h 30 min``."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes = -(-rest // 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _card(link: Link, info: FileInfo) -> dict[str, Any]:
    return {
        "name": info.name.rsplit("/", 1)[-1],
        "size": human_size(info.size),
        "expires": utc(link.expires_at),
        "sha256": info.sha256,
    }


def countdown(seconds: int) -> str:
    """``3725`` as ``01:02:05``, as the landing page's script writes it."""
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{minutes:02d}:{secs:02d}"
    if days or hours:
        text = f"{hours:02d}:{text}"
    return f"{days}d {text}" if days else text


def wants_json(request: Request) -> bool:
    """True when the client's Accept header prefers JSON to HTML (ties go to HTML)."""
    accept = request.headers.get("accept", "")
    try:
        return (
            bool(accept)
            and mimeparse.best_match(["application/json", "text/html"], accept)
            == "application/json"
        )
    except (ValueError, mimeparse.MimeTypeParseException):
        return False


def _json_body(exc: LinkError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.code, "message": str(exc)}
    when = _when(exc)
    if isinstance(exc, LinkExpired) and when:
        body["expired_at"] = when.isoformat()
    if isinstance(exc, LinkRevoked) and when:
        body["revoked_at"] = when.isoformat()
    if isinstance(exc, LinkExhausted):
        body["max_downloads"] = exc.max_downloads
    return body


def _when(exc: LinkError) -> datetime | None:
    if isinstance(exc, LinkExpired):
        return exc.expired_at
    if isinstance(exc, LinkRevoked):
        return exc.revoked_at
    return None
