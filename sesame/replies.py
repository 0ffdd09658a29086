"""Replies to keywords: templates checked when a rule is added, and filled per request."""

from __future__ import annotations

import math
import string
from datetime import datetime, tzinfo

from sesame.errors import InvalidInput
from sesame.models import FileInfo, LinkStatus, Rule, SharedLink, human_size, keyword_key, utc

PLACEHOLDERS = {
    "url": "the link",
    "file": "the file's name",
    "size": "the file's size",
    "sha256": "the file's SHA-256",
    "expires": "when the link expires",
    "minutes": "the minutes the link has left",
}
MAX_KEYWORD = 100
# WeChat takes at most 2048 bytes of text in a reply; leave room for the link and the hash.
MAX_TEMPLATE_BYTES = 1200

DEFAULT_TEMPLATE = (
    "{file} 临时下载地址(请使用浏览器打开,{minutes} 分钟内有效):\n"
    "Download link for {file} (open it in your browser; valid for {minutes} min):\n"
    "{url}\n"
    "\n"
    "有效期至 Valid until: {expires}\n"
    "SHA-256: {sha256}"
)

_GONE = {
    LinkStatus.EXPIRED: ("已过期", "has expired"),
    LinkStatus.REVOKED: ("已被撤销", "was revoked"),
    LinkStatus.USED_UP: ("的下载次数已用完", "has been used up"),
}
GONE_TEMPLATE = (
    "你在 {issued} 领取的 {file} 下载链接{state_zh}。"
    "请在 {next} 之后再发送「{keyword}」获取新链接。\n"
    'The link to {file} you got at {issued} {state_en}. Send "{keyword}" again after {next} '
    "for a new one."
)


def check_keyword(keyword: str) -> str:
    """``keyword`` stripped; raises InvalidInput if nothing is left to match or it is long."""
    cleaned = keyword.strip()
    if not keyword_key(cleaned):
        raise InvalidInput("A keyword needs at least one letter, digit or character.")
    if len(cleaned) > MAX_KEYWORD:
        raise InvalidInput(f"A keyword is at most {MAX_KEYWORD} characters long.")
    return cleaned


def check_template(template: str) -> str:
    """``template`` if it is a usable reply: only known placeholders, ``{url}`` among them,
    short enough for WeChat. Raises InvalidInput saying what is wrong."""
    known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        raise InvalidInput(
            "The reply template has an unmatched { or }; write {{ and }} for literal braces."
        ) from None
    used = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + "}"
            raise InvalidInput(
                f"The reply template has an unknown placeholder {shown}; use {known}."
            )
        used.add(name)
    if "url" not in used:
        raise InvalidInput("The reply template must contain {url}, or nobody gets the link.")
    if len(template.encode()) > MAX_TEMPLATE_BYTES:
        raise InvalidInput(f"The reply template is longer than {MAX_TEMPLATE_BYTES} bytes.")
    return template


def reply(rule: Rule, shared: SharedLink, info: FileInfo, now: float, zone: tzinfo) -> str:
    """The text that answers ``rule``'s keyword with ``shared``: the rule's template if the
    link is usable, otherwise a note saying when the sender may ask again."""
    link = shared.link
    name = info.name.rsplit("/", 1)[-1]
    status = link.status(now)
    if status is not LinkStatus.ACTIVE:
        state_zh, state_en = _GONE[status]
        return GONE_TEMPLATE.format(
            issued=local_time(link.created_at, zone),
            next=local_time(link.created_at + rule.cooldown, zone),
            file=name,
            keyword=rule.keyword,
            state_zh=state_zh,
            state_en=state_en,
        )
    return (rule.template or DEFAULT_TEMPLATE).format(
        url=shared.url,
        file=name,
        size=human_size(info.size),
        sha256=info.sha256,
        expires=local_time(link.expires_at, zone),
        minutes=max(1, math.ceil((link.expires_at - now) / 60)),
    )


def local_time(timestamp: float, zone: tzinfo) -> str:
    """``2027-01-15 16:00 (UTC+8)``: a time as people in ``zone`` read it."""
    moment: datetime = utc(timestamp).astimezone(zone)
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    shown = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "") if minutes else "UTC"
    return f"{moment:%Y-%m-%d %H:%M} ({shown})"
