"""How the dashboard writes durations, times and the share text."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

import pytest

from admin_ui import display
from sesame.models import FileInfo, Link, SharedLink

SHANGHAI = ZoneInfo("Asia/Shanghai")
KOLKATA = ZoneInfo("Asia/Kolkata")
NOW = 1_700_000_000  # 2023-11-14 22:13:20 UTC


@pytest.mark.parametrize(
    ("seconds", "en", "zh"),
    [
        (0, "0 seconds", "0 秒"),
        (1, "1 second", "1 秒"),
        (599, "9 minutes 59 seconds", "9 分钟 59 秒"),
        (600, "10 minutes", "10 分钟"),
        (3600, "1 hour", "1 小时"),
        (5400, "1 hour 30 minutes", "1 小时 30 分钟"),
        (86400 + 3600 + 61, "1 day 1 hour", "1 天 1 小时"),
        (86400 + 61, "1 day", "1 天"),
        (7 * 86400, "7 days", "7 天"),
        (-5, "0 seconds", "0 秒"),
    ],
)
def test_span(seconds: int, en: str, zh: str) -> None:
    """Durations to their two largest units, in English and Chinese."""
    assert display.span(seconds) == en
    assert display.span(seconds, "zh") == zh


@pytest.mark.parametrize(
    ("tz", "text"),
    [
        (UTC, "2023-11-14 22:13 (UTC)"),
        (SHANGHAI, "2023-11-15 06:13 (UTC+8)"),
        (KOLKATA, "2023-11-15 03:43 (UTC+5:30)"),
        (ZoneInfo("America/St_Johns"), "2023-11-14 18:43 (UTC-3:30)"),
    ],
)
def test_moment_with_zone(tz: ZoneInfo, text: str) -> None:
    """A time in a zone, with the zone's offset written out for a reader elsewhere."""
    assert display.moment_with_zone(NOW, tz) == text


def test_plain_keeps_markdown_literal() -> None:
    """Names with Markdown or LaTeX characters are escaped, so they render as typed."""
    assert display.plain("*a*_$b$.txt") == r"\*a\*\_\$b\$.txt"
    assert display.plain("芝麻 开门.txt") == "芝麻 开门.txt"


@pytest.mark.parametrize(
    ("limit", "en", "zh"),
    [(None, "no download limit", "不限下载次数"), (1, "one download only", "仅限下载 1 次"),
     (3, "3 downloads", "仅限下载 3 次")],
)  # fmt: skip
def test_allowed(limit: int | None, en: str, zh: str) -> None:
    """What a download limit means, in both languages."""
    assert display.allowed(limit) == en and display.allowed(limit, "zh") == zh


def test_share_text() -> None:
    """Chinese, then English: the file's own name, the link, the lifetime and expiry, the
    limit and the SHA-256."""
    link = Link("abc", "photos/芝麻 开门.zip", NOW, NOW + 3600, max_downloads=1)
    info = FileInfo("photos/芝麻 开门.zip", 10, NOW, "ab" * 32, "application/zip")
    text = display.share_text(SharedLink(link, "https://s.test/d/T"), info, SHANGHAI)
    assert text == (
        "文件「芝麻 开门.zip」的下载链接:\n"
        "https://s.test/d/T\n"
        "有效期 1 小时,至 2023-11-15 07:13 (UTC+8);仅限下载 1 次。\n"
        f"SHA-256:{'ab' * 32}\n"
        "\n"
        "Download link for “芝麻 开门.zip”:\n"
        "https://s.test/d/T\n"
        "Valid for 1 hour, until 2023-11-15 07:13 (UTC+8); one download only.\n"
        f"SHA-256: {'ab' * 32}"
    )


def test_share_text_without_the_file() -> None:
    """When the file is gone, the text leaves the hash out rather than guessing."""
    link = Link("abc", "a.txt", NOW, NOW + 600)
    text = display.share_text(SharedLink(link, "https://s.test/d/T"), None, UTC)
    assert "SHA-256" not in text and "不限下载次数" in text
