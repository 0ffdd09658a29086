"""Every page in a real Chromium at 1280x900 and 390x844, in English and 中文: the language
the browser asks for, and the owner's pick kept over a reload; the made link and its QR code
in view at once; an upload's progress; sizes written one way; a Links table that fits and
whose rows act; charts whose legend keeps every file and whose dates do not crowd; wrong
passwords answered late, never refused.

Each page is saved as a screenshot (``scripts/screenshots`` keeps them in docs/screenshots).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from sesame.service import Service
from tests.admin_ui.browsing import (
    PHONE,
    WIDE,
    Stack,
    close_dialog,
    go_to,
    make_link,
    qr_code_of,
    sign_in,
    snap,
    tap_row,
)
from tests.support import PASSWORD, ZONE

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(autouse=True)
def patient() -> Iterator[None]:
    """Charts, metrics and images come in chunks of script loaded when first needed: on a
    busy 2-core machine that can take longer than Playwright's 5 s."""
    expect.set_options(timeout=20_000)
    yield
    expect.set_options(timeout=5_000)


SCREENS = {"wide": WIDE, "phone": PHONE}
LOCALES = {"en": "en-US,en;q=0.9", "zh_CN": "zh-CN,zh;q=0.9,en;q=0.8"}
PAGES = {  # path: the page's heading in each language
    "share": {"en": "Share a file", "zh_CN": "分享文件"},
    "links": {"en": "Links", "zh_CN": "链接"},
    "activity": {"en": "Activity", "zh_CN": "动态"},
    "wechat": {"en": "WeChat keywords", "zh_CN": "微信关键词"},
    "apikeys": {"en": "API keys", "zh_CN": "API 密钥"},
}
FILES = {  # shared and downloaded before the pages are seen: names a legend must keep
    "InstMsiW.exe": b"MZ" + bytes(range(256)) * 64,
    "family-photos-2025-spring.zip": bytes(range(256)) * 400,
    "welcome.txt": b"welcome to sesame\n",
}
# A size written another way than sesame.models.human_size does: "31.5MB", "15.0B", "2 KB".
OTHER_SIZE = re.compile(r"\d(?:[KMGT]i?B|B)\b|\d\.\d+ ?B\b|\d ?[KMGT]B\b")


def browse(browser: Browser, screen: str, language: str) -> BrowserContext:
    """A browser whose screen is ``screen`` and whose preferred language is ``language``."""
    phone = screen == "phone"
    return browser.new_context(
        viewport=SCREENS[screen],
        is_mobile=phone,
        has_touch=phone,
        timezone_id=ZONE,
        extra_http_headers={"Accept-Language": LOCALES[language]},
    )


@pytest.fixture
def world(stack: Stack, service: Service, dashboard_settings: Path) -> Stack:
    """Files, links with recipients and notes, downloads of three files through the gateway,
    a keyword rule and an API key: something on every page."""
    for name, body in FILES.items():
        (dashboard_settings / name).write_bytes(body)
    for name in FILES:
        shared = service.share(name, "1d", 5, "Alice", "for the family album")
        path = shared.url.removeprefix(service.settings.public_url)
        assert httpx.get(stack.gateway + path).status_code == 200
    service.share("welcome.txt", "1h", 1, "张三", "安装包")
    service.add_rule("芝麻开门", "InstMsiW.exe")
    service.create_api_key("backup script")
    return stack


def visible_table(page: Page, screen: str) -> str:
    return "links_table_wide" if screen == "wide" else "links_table_narrow"


def fits(page: Page, container: str) -> bool:
    """Whether the data grid in ``container`` shows all its columns without scrolling."""
    return bool(
        page.evaluate(
            "(key) => { const s = document.querySelector(`.st-key-${key} .dvn-scroller`);"
            " return !!s && s.offsetWidth > 0 && s.scrollWidth <= s.clientWidth + 1 }",
            container,
        )
    )


def chart_texts(page: Page, container: str, role: str) -> list[str]:
    """The texts of one role (``legend-label``, ``axis-label``) in the first visible chart
    inside ``container``."""
    chart = page.locator(f".st-key-{container} [data-testid=stVegaLiteChart]:visible").first
    expect(chart.locator("svg")).to_be_visible()
    return [t.strip() for t in chart.locator(f"g.role-{role} text").all_text_contents()]


@pytest.mark.parametrize("language", ["en", "zh_CN"])
@pytest.mark.parametrize("screen", ["wide", "phone"])
def test_every_page(world: Stack, browser: Browser, screen: str, language: str) -> None:
    """In the browser's language, at its size: the link made is in view with its QR code at
    once; the Links table fits and a tapped row copies, shows and revokes; the day chart's
    legend lists every file and its dates do not crowd; no size is written another way."""
    page = browse(browser, screen, language).new_page()
    page.goto(world.dashboard)
    expect(page.locator("input[type=password]")).to_be_visible(timeout=15_000)
    snap(page, f"{language}-{screen}-0-sign-in")
    sign_in(page, world)
    expect(page.get_by_role("heading", name=PAGES["share"][language], level=1)).to_be_visible()

    url = make_link(page)
    result = page.locator(".st-key-share_result")
    expect(result.get_by_test_id("stCode").first).to_be_in_viewport()
    expect(result.get_by_role("img")).to_be_in_viewport()
    assert qr_code_of(page, world.dashboard) == url
    snap(page, f"{language}-{screen}-1-share")
    close_dialog(page)
    assert not OTHER_SIZE.search(page.get_by_test_id("stMain").inner_text())

    go_to(page, PAGES["links"][language], "links")
    table = visible_table(page, screen)
    expect(page.locator(f".st-key-{table} [data-testid=stDataFrame]")).to_be_visible()
    assert fits(page, table)
    tap_row(page, table, 0)
    card = page.locator(".st-key-links_result")
    expect(card.get_by_test_id("stCode").first).to_contain_text(url)
    expect(card.get_by_role("img")).to_be_visible()
    expect(page.locator(".st-key-links_revoke button")).to_be_visible()
    snap(page, f"{language}-{screen}-2-links")

    go_to(page, PAGES["activity"][language], "activity")
    assert set(chart_texts(page, "activity_charts", "legend-label")) >= set(FILES)
    for chart in ("activity_charts", "bandwidth"):  # 30 days each
        labels = chart_texts(page, chart, "axis-label")
        dates = [t for t in labels if re.fullmatch(r"\d\d-\d\d", t)]
        assert 2 <= len(dates) <= (8 if screen == "wide" else 5), (chart, labels)
    assert not OTHER_SIZE.search(page.get_by_test_id("stMain").inner_text())
    snap(page, f"{language}-{screen}-3-activity")

    go_to(page, PAGES["wechat"][language], "wechat")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    snap(page, f"{language}-{screen}-4-wechat")
    go_to(page, PAGES["apikeys"][language], "apikeys")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    snap(page, f"{language}-{screen}-5-apikeys")


def test_the_language_switch_sticks(stack: Stack, browser: Browser) -> None:
    """An English browser switched to 中文 in the sidebar stays in Chinese over a reload,
    on the sign-in page and after moving to another page."""
    page = browse(browser, "wide", "en").new_page()
    sign_in(page, stack)
    expect(page.get_by_role("heading", name="Share a file", level=1)).to_be_visible()
    page.locator(".st-key-language").get_by_role("radio", name="中文").click()
    expect(page.get_by_role("heading", name="分享文件", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"lang=zh_CN"))
    page.reload()
    expect(page.get_by_role("button", name="登录")).to_be_visible(timeout=15_000)
    sign_in(page, stack, "?lang=zh_CN")
    go_to(page, "链接", "links")
    expect(page).to_have_url(re.compile(r"/links\?lang=zh_CN"))
    page.locator(".st-key-language").get_by_role("radio", name="English").click()
    expect(page.get_by_role("heading", name="Links", level=1)).to_be_visible()


@pytest.mark.parametrize("screen", ["wide", "phone"])
def test_an_upload_shows_its_progress(
    stack: Stack, browser: Browser, tmp_path: Path, screen: str
) -> None:
    """At 1.5 MB/s (Chromium's own throttling), a 6 MiB upload shows a bar, the percentage
    and the time left in the drop zone as it goes, then the file's size written as
    everywhere else ("6.0 MiB"), never Streamlit's own ("6.3MB")."""
    context = browse(browser, screen, "en")
    page = context.new_page()
    sign_in(page, stack)
    zone = page.locator(".st-key-upload_file [data-testid=stFileUploaderDropzone]")
    expect(zone).to_be_visible()
    said = zone.evaluate("(e) => getComputedStyle(e, '::before').content")
    assert "Drop a file here" in said and zone.bounding_box()["height"] >= 100  # type: ignore[index]
    network = context.new_cdp_session(page)
    network.send("Network.enable")
    conditions = {"offline": False, "latency": 20, "downloadThroughput": -1}
    network.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": 1.5e6})
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 4 * 1024 * 6)
    page.locator(".st-key-upload_file input[type=file]").set_input_files(big)
    progress = page.locator(".sesame-upload-progress")
    expect(progress).to_contain_text(re.compile(r"Uploading… \d+ % · about \d+ s left"))
    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(seen) < 3:
        value = progress.locator("progress").get_attribute("value")
        if value and 0 < float(value) < 100:
            seen.add(float(value))
        page.wait_for_timeout(200)
    assert len(seen) >= 3, f"the bar did not move: {seen}"
    snap(page, f"en-{screen}-upload")
    expect(page.get_by_text("Added “big.bin” (6.0 MiB)")).to_be_visible(timeout=30_000)
    expect(progress).to_be_hidden()
    assert not OTHER_SIZE.search(page.get_by_test_id("stMain").inner_text())


def test_wrong_passwords_are_answered_later_not_refused(stack: Stack, browser: Browser) -> None:
    """Each wrong password is answered after a longer wait (0.5 s, then 1 s), with "Wrong
    password." and never a refusal to check; the right one then signs in."""
    context = browse(browser, "wide", "en")
    answered = []
    for guess in ("guess-1", "guess-2"):  # each in a tab of its own: no answer left on it
        page = context.new_page()
        page.goto(stack.dashboard)
        page.locator("input[type=password]").fill(guess)
        started = time.monotonic()
        page.locator(".st-key-signin_submit button").click()
        expect(page.get_by_text("Wrong password.")).to_be_visible(timeout=10_000)
        answered.append(time.monotonic() - started)
        expect(page.get_by_text(re.compile("wait|too many", re.I))).to_have_count(0)
    assert answered[0] >= 0.5 and answered[1] >= 1.0, answered
    page.locator("input[type=password]").fill(PASSWORD)
    page.locator(".st-key-signin_submit button").click()
    expect(page.locator(".st-key-share_submit")).to_be_visible(timeout=15_000)
