"""Requests that only look: link-preview bots, security scanners and browser prefetches.

They get a small card about the file and never take a download, so a one-time link pasted
into a chat survives the chat's preview.
"""

from __future__ import annotations

import functools
import re

from starlette.datastructures import Headers
from starlette.requests import Request

# Fetchers that unfurl or scan links on someone's behalf (matched case-insensitively).
# In-app browsers of chat apps (WeChat, Lark, Snapchat...) are people, not bots: not here.
PREVIEW_AGENTS = (
    "Slackbot",
    "Slack-ImgProxy",
    "TelegramBot",
    "WhatsApp",
    "facebookexternalhit",
    "Facebot",
    "Discordbot",
    "Twitterbot",
    "LinkedInBot",
    "SkypeUriPreview",
    "MicrosoftPreview",
    "BingPreview",
    "Microsoft Office",
    "ms-office",
    "Iframely",
    "Embedly",
    "redditbot",
    "Pinterestbot",
    "Applebot",
    "vkShare",
    "Mattermost-Bot",
    "Rocket.Chat",
    "ZulipURLPreview",
    "Mastodon/",
    "Bluesky Cardyb",
    "KakaoTalk-Scrap",
    "Viber",
    "Google-PageRenderer",
    "Google-Safety",
    "GoogleOther",
    "Googlebot",
    "bingbot",
    "YandexBot",
    "Baiduspider",
    "Bytespider",
    "Sogou web spider",
    "360Spider",
    "DingTalkBot",
    "Proofpoint",
    "Mimecast",
    "Barracuda",
    "Symantec",
    "Trend Micro",
)
_AGENTS = re.compile("|".join(re.escape(agent) for agent in PREVIEW_AGENTS), re.IGNORECASE)
MAX_REMEMBERED_AGENT = 512  # characters: a longer agent is looked at, not remembered
_PURPOSES = frozenset({b"sec-purpose", b"purpose", b"x-purpose", b"x-moz"})  # names as sent


def first_values(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """A request's headers (ASGI's, names in lower case) by name, each its first value, as
    Starlette's ``Headers.get`` gives it: read once for a download's several looks at them."""
    values: dict[str, str] = {}
    for name, value in raw:
        values.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return values


def is_preview(agent: str, raw: list[tuple[bytes, bytes]]) -> bool:
    """True for a prefetch (a ``Sec-Purpose``, ``Purpose``, ``X-Purpose`` or ``X-Moz`` among
    the ``raw`` headers), a known preview bot or link scanner (its user ``agent``), or an
    in-app browser that cannot save files."""
    if _looks(agent) if len(agent) <= MAX_REMEMBERED_AGENT else _looks.__wrapped__(agent):
        return True
    for name, value in raw:
        if name in _PURPOSES:
            words = value.lower()
            if b"prefetch" in words or b"preview" in words or b"prerender" in words:
                return True
    return False


@functools.lru_cache(maxsize=4096)
def _looks(agent: str) -> bool:
    """Whether a program that says it is ``agent`` only looks (cached: a few programs make
    most requests, and the patterns are long)."""
    return bool(_IN_APP.search(agent) or _AGENTS.search(agent))


_IN_APP = re.compile(r"MicroMessenger|\bQQ/", re.IGNORECASE)


def is_in_app_browser(headers: Headers) -> bool:
    """True inside WeChat's or QQ's built-in browser, which cannot save a download."""
    return bool(_IN_APP.search(headers.get("user-agent", "")))


DOWNLOAD_PARAM = "dl"


def wants_landing(request: Request) -> bool:
    """True for a browser opening a link: a GET from the first byte that accepts HTML and
    is not the landing page's own button (``?dl=1``). curl, wget and download managers
    (no ``text/html`` in Accept) and resumptions get the file."""
    if request.method != "GET" or "range" in request.headers:
        return False
    if request.scope.get("query_string") and request.query_params.get(DOWNLOAD_PARAM):
        return False
    return "text/html" in request.headers.get("accept", "").lower()
