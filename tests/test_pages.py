"""The recipients' pages: the gateway's root says what the server is and nothing more; every
page draws its marks itself (no glyph that needs a font the phone may lack) and shows times in
the viewer's own zone beside UTC, in a real Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from starlette.requests import Request
from starlette.testclient import TestClient

from gateway.pages import Pages
from sesame.errors import (
    BudgetSpent,
    LinkExhausted,
    LinkExpired,
    LinkInvalid,
    LinkRevoked,
    RateLimited,
    StoreUnavailable,
    TooBusy,
)
from sesame.models import FileInfo
from sesame.service import Service
from tests.support import KEY, running_gateway, sesame_env

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
WECHAT = {"User-Agent": "Mozilla/5.0 (Linux; Android 13) MicroMessenger/8.0.47.2560 WeChat"}
PREVIEW = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
# Arrows, symbols, dingbats, emoji: what a phone without the right font shows as an empty box.
FONT_DEPENDENT = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff\ufe0f]")
WHEN = datetime(2026, 1, 31, 10, 0, 0, tzinfo=UTC)


def test_the_root_says_what_this_server_is(service: Service, client: TestClient) -> None:
    """GET / is a small page in Chinese and English about the gateway, naming no file or link."""
    shared = service.share("hello.txt")
    page = client.get("/", headers=BROWSER)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Sesame 下载网关" in page.text and "A Sesame download gateway" in page.text
    assert "hello.txt" not in page.text and "/d/" not in page.text
    assert shared.url.rsplit("/", 1)[1] not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_the_root_in_json_and_head(client: TestClient) -> None:
    """A client that prefers JSON gets JSON; HEAD gets the page's headers and no body."""
    answer = client.get("/", headers=JSON)
    assert answer.status_code == 200 and answer.json()["service"] == "sesame"
    head = client.head("/", headers=BROWSER)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(("method", "path", "status"), [("POST", "/", 405), ("GET", "/x", 404)])
def test_around_the_root(client: TestClient, method: str, path: str, status: int) -> None:
    """Other methods on / and unknown paths still get their plain refusals."""
    assert client.request(method, path).status_code == status


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


def _every_page(service: Service) -> Iterator[tuple[str, str]]:
    pages, request = Pages(), _request(BROWSER)
    shared = service.share("hello.txt", landing=True)
    info = service.catalog.info("hello.txt")
    assert isinstance(info, FileInfo)
    errors = [
        LinkInvalid(),
        LinkExpired("x", WHEN),
        LinkRevoked("x", WHEN),
        LinkExhausted("x", 1),
    ]
    for error in errors:
        yield error.code, pages.link_error(request, error).body.decode()
    for refusal in [TooBusy(4, 30), RateLimited(10), BudgetSpent(WHEN, 3600)]:
        yield refusal.code, pages.unavailable(request, refusal, WHEN.timestamp()).body.decode()
    down = pages.store_unavailable(request, StoreUnavailable("read", "locked"))
    yield "unavailable", down.body.decode()
    yield "landing", pages.landing(shared.link, info, 60, "?dl=1").body.decode()
    yield "preview", pages.preview(request, shared.link, info).body.decode()
    yield "wechat", pages.open_in_browser(shared.url, shared.link, info).body.decode()
    yield "home", pages.home(request).body.decode()


def test_no_page_needs_a_symbol_font(service: Service) -> None:
    """Every page draws its mark as inline SVG and writes no arrow, symbol or emoji glyph."""
    seen = set()
    for kind, body in _every_page(service):
        seen.add(kind)
        assert '<svg class="mark"' in body, kind
        assert not FONT_DEPENDENT.findall(body), (kind, FONT_DEPENDENT.findall(body))
    assert len(seen) == 12


def test_times_are_marked_for_the_viewers_zone(service: Service) -> None:
    """Every time a page shows is a <time data-local> holding UTC, which the script rewrites."""
    for kind, body in _every_page(service):
        for attributes, text in re.findall(r"<time([^>]*)>([^<]*)</time>", body):
            assert "data-local" in attributes and text.endswith(" UTC"), kind


@pytest.fixture
def gateway(service: Service, tmp_path: Path) -> Iterator[str]:
    """A gateway process on the service's SQLite store."""
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(service.settings.files_dir),
        data_dir=str(service.settings.data_dir),
    )
    with running_gateway(env, tmp_path / "gateway.log") as url:
        yield url


def _expired_page(service: Service, gateway: str) -> tuple[str, str]:
    """The address of a link the gateway finds expired (the service's clock is years behind
    the gateway's), and its expiry as the page writes it in UTC."""
    shared = service.share("hello.txt")
    expired = f"{datetime.fromtimestamp(shared.link.expires_at, UTC):%Y-%m-%d %H:%M:%S} UTC"
    return gateway + "/d/" + shared.url.rsplit("/", 1)[1], expired


@pytest.mark.browser
@pytest.mark.parametrize(
    ("zone", "local"),
    [("Asia/Shanghai", "(UTC+8)"), ("America/St_Johns", "(UTC-3:30)"), ("UTC", None)],
)
def test_chromium_shows_the_viewers_time(
    browser: Browser, service: Service, gateway: str, zone: str, local: str | None
) -> None:
    """In Chromium, an expired link's page shows when, in the viewer's zone and in UTC, with
    no complaint from the page's CSP, and its drawn hourglass; a viewer in UTC sees UTC once."""
    context = browser.new_context(timezone_id=zone, locale="zh-CN")
    page = context.new_page()
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(message.text))
    address, utc = _expired_page(service, gateway)
    assert page.goto(address).status == 410
    shown = page.locator("p.mono").first.inner_text()
    if local is None:
        assert shown == utc
    else:
        assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {re.escape(local)} · {utc}", shown)
    assert not [c for c in complaints if "Content Security Policy" in c]
    box = page.locator("svg.mark").bounding_box()
    assert box is not None and box["width"] >= 40 and box["height"] >= 40
    context.close()


@pytest.mark.browser
def test_without_javascript_utc_stays(browser: Browser, service: Service, gateway: str) -> None:
    """With scripts off, the page still says the time, in UTC."""
    context = browser.new_context(timezone_id="Asia/Shanghai", java_script_enabled=False)
    page = context.new_page()
    address, utc = _expired_page(service, gateway)
    page.goto(address)
    assert page.locator("p.mono").inner_text() == utc
    context.close()
