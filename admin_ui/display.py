"""How the dashboard writes things for people: local times, durations, the share text, and
Sesame's errors as sentences on the page."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from admin_ui import language
from admin_ui.language import N_, _
from sesame.errors import SesameError
from sesame.models import FileInfo, LinkStatus, SharedLink
from sesame.settings import Settings

Kind = Literal["success", "info", "warning", "error"]
Lang = Literal["en", "zh"]

NOTICES = "notices"  # session key: what callbacks reported, shown on the next run
MIB = 1024 * 1024

_UNITS = ((86400, "day", "天"), (3600, "hour", "小时"), (60, "minute", "分钟"), (1, "second", "秒"))
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~$])")
_SHOW: dict[Kind, Callable[..., object]] = {
    "success": st.success,
    "info": st.info,
    "warning": st.warning,
    "error": st.error,
}
_ICONS: dict[Kind, str] = {
    "success": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "error": ":material/error:",
}


# -- errors and notices -----------------------------------------------------------------


@contextmanager
def reported(later: bool = False) -> Iterator[None]:
    """Shows a SesameError raised inside as its sentence and carries on; other errors pass.

    ``later=True`` is for widget callbacks, which run before the page is drawn: the sentence
    waits for the page's ``notices()``.
    """
    try:
        yield
    except SesameError as exc:
        if later:
            notify("error", str(exc))
        else:
            show("error", str(exc))


def notify(kind: Kind, text: str) -> None:
    """Keeps ``text`` (plain, not Markdown) for the next ``notices()`` of this session."""
    st.session_state.setdefault(NOTICES, []).append((kind, text))


def notices() -> None:
    """Shows, once, what callbacks reported since the last run."""
    for kind, text in st.session_state.pop(NOTICES, []):
        show(kind, text)


def show(kind: Kind, text: str) -> None:
    """One alert box holding plain ``text``."""
    _SHOW[kind](plain(text), icon=_ICONS[kind])


def confirmed(
    key: str, item: str, ask: str, question: str, yes: str, act: Callable[[], str]
) -> None:
    """A button ``ask`` (key ``key``) that first asks ``question`` about ``item``, then on
    ``yes`` runs ``act`` and shows the sentence it returns; "Keep it" calls it off."""
    pending = f"{key}_pending"  # session key: the item waiting for an answer
    if st.session_state.get(pending) != item:
        st.button(ask, key=key, on_click=_set, args=(pending, item))
        return
    show("warning", question)
    left, right = st.columns(2)
    left.button(
        yes,
        key=f"{key}_confirm",
        type="primary",
        on_click=_answered,
        args=(pending, act),
        width="stretch",
    )
    right.button(
        _("Keep it"), key=f"{key}_cancel", on_click=_set, args=(pending, None), width="stretch"
    )


def _set(name: str, value: object) -> None:
    st.session_state[name] = value


def _answered(pending: str, act: Callable[[], str]) -> None:
    """Widget callback: runs ``act`` and keeps its sentence for the next run."""
    st.session_state.pop(pending, None)
    with reported(later=True):
        notify("success", act())


def plain(text: str) -> str:
    """``text`` escaped for Streamlit's Markdown, so a name like ``*a*$b$.txt`` stays as is."""
    return _MARKDOWN.sub(r"\\\1", text)


# -- times, durations, sizes ------------------------------------------------------------


def zone() -> tzinfo:
    """The browser's time zone (``st.context.timezone``), or UTC when it is unknown."""
    name = st.context.timezone
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def moment(timestamp: float, tz: tzinfo) -> str:
    """``2025-11-23 20:37`` in ``tz``."""
    return f"{datetime.fromtimestamp(timestamp, tz):%Y-%m-%d %H:%M}"


def day(timestamp: float, tz: tzinfo) -> str:
    """``2025-11-23``: the date in ``tz``."""
    return f"{datetime.fromtimestamp(timestamp, tz):%Y-%m-%d}"


def moment_with_zone(timestamp: float, tz: tzinfo) -> str:
    """``2025-11-23 20:37 (UTC+8)``: for text that may be read in another time zone."""
    local = datetime.fromtimestamp(timestamp, tz)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    name = "UTC" if not minutes else f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{local:%Y-%m-%d %H:%M} ({name})"


def here() -> Lang:
    """The language of this session, as ``span()`` and ``allowed()`` take it."""
    return "zh" if language.current() == "zh_CN" else "en"


STATUSES = {
    LinkStatus.ACTIVE: N_("active"),
    LinkStatus.EXPIRED: N_("expired"),
    LinkStatus.REVOKED: N_("revoked"),
    LinkStatus.USED_UP: N_("used up"),
}


def status(value: LinkStatus) -> str:
    """A link's status in this session's language."""
    return _(STATUSES[value])


def span(seconds: float, lang: Lang = "en") -> str:
    """A duration as people say it, to its two largest units: ``1 day 2 hours``, ``10 分钟``."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for size, en, zh in _UNITS:
        count, left = divmod(left, size)
        if parts and not count:
            break
        if count:
            parts.append(f"{count} {zh}" if lang == "zh" else f"{count} {en}{'s' * (count != 1)}")
        if len(parts) == 2:
            break
    return " ".join(parts) or ("0 秒" if lang == "zh" else "0 seconds")


def allowed(max_downloads: int | None, lang: Lang = "en") -> str:
    """What a download limit means: ``one download only``, ``仅限下载 1 次``, ..."""
    if lang == "zh":
        return "不限下载次数" if max_downloads is None else f"仅限下载 {max_downloads} 次"
    if max_downloads is None:
        return "no download limit"
    return "one download only" if max_downloads == 1 else f"{max_downloads} downloads"


def upload_limit_mb(settings: Settings) -> int:
    """The uploader's limit in MB: SESAME_MAX_UPLOAD_SIZE, within Streamlit's own cap."""
    wanted = math.ceil(int(settings.max_upload_size) / MIB)
    cap = int(st.get_option("server.maxUploadSize"))
    return max(1, min(wanted, cap))


# -- the text an owner pastes -----------------------------------------------------------


def share_text(shared: SharedLink, info: FileInfo | None, tz: tzinfo) -> str:
    """A message in Chinese and English with the link, its expiry and the file's SHA-256."""
    link = shared.link
    name = link.file.rsplit("/", 1)[-1]
    until = moment_with_zone(link.expires_at, tz)
    zh = [
        f"文件「{name}」的下载链接:",
        shared.url,
        f"有效期 {span(link.lifetime, 'zh')},至 {until};{allowed(link.max_downloads, 'zh')}。",
    ]
    en = [
        f"Download link for “{name}”:",
        shared.url,
        f"Valid for {span(link.lifetime)}, until {until}; {allowed(link.max_downloads)}.",
    ]
    if info is not None:
        zh.append(f"SHA-256:{info.sha256}")
        en.append(f"SHA-256: {info.sha256}")
    return "\n".join([*zh, "", *en])
