"""Links in a real Chromium against a real gateway process: WeChat's in-app browser, then a
normal browser downloading; the landing page's countdown and button."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError
from wechatpy import parse_message

from sesame.service import Service
from tests.support import (
    BODY,
    FILE,
    KEY,
    free_port,
    make_settings,
    running_gateway,
    sesame_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TOKEN = "sesameWeChat2024"
OPENID = "oWx1p5ABCDEFGHIJKLMNOPQRSTUV"
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36"
    " (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065"
    " MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64"
    " Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36"
)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def service(tmp_path: Path, port: int) -> Iterator[Service]:
    settings = make_settings(tmp_path, public_url=f"http://127.0.0.1:{port}", wechat_token=TOKEN)
    built = Service.from_settings(settings)
    yield built
    built.store.close()


@pytest.fixture
def base(service: Service, tmp_path: Path, port: int) -> Iterator[str]:
    """A gateway process sharing the service's SQLite store; links point at it."""
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(service.settings.files_dir),
        data_dir=str(service.settings.data_dir),
        public_url=service.settings.public_url,
        wechat_token=TOKEN,
    )
    with running_gateway(env, tmp_path / "gateway.log", port) as url:
        yield url


def context(browser: Browser, user_agent: str) -> BrowserContext:
    return browser.new_context(user_agent=user_agent, accept_downloads=True, locale="zh-CN")


def download(page: Page, url: str) -> bytes:
    """Open ``url`` (or click, if it is a selector) and return the bytes downloaded."""
    with page.expect_download() as info:
        if url.startswith("http"):
            try:
                page.goto(url)
            except PlaywrightError:
                pass  # "Download is starting": the navigation became a download
        else:
            page.click(url)
    path = info.value.path()
    return Path(path).read_bytes()


def ask_over_wechat(base: str, keyword: str) -> str:
    """Send ``keyword`` to the real gateway as WeChat would; the link in the reply."""
    from wechatpy.utils import WeChatSigner

    timestamp, nonce = str(int(time.time())), "1405803721"
    signer = WeChatSigner()
    signer.add_data(TOKEN, timestamp, nonce)
    xml = (
        f"<xml><ToUserName><![CDATA[gh_3f1e2d4c5b6a]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>{timestamp}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{keyword}]]></Content>"
        "<MsgId>24602925186478032</MsgId></xml>"
    )
    query = {"signature": signer.signature, "timestamp": timestamp, "nonce": nonce}
    response = httpx.post(base + "/wechat", params=query, content=xml.encode())
    assert response.status_code == 200
    found = re.search(r"http://\S+/d/\S+", parse_message(response.text).content)
    assert found
    return found.group(0)


def downloads(service: Service, url: str) -> int:
    return next(s.link.downloads for s in service.links(True) if s.url == url)


def test_wechat_sees_the_in_app_page_and_a_browser_then_downloads(
    browser: Browser, service: Service, base: str
) -> None:
    """A link got by sending 芝麻开门 shows WeChat's browser how to open it elsewhere, taking
    nothing; a normal browser then downloads the file."""
    service.add_rule("芝麻开门", FILE, lifetime="10m", max_downloads=1)
    url = ask_over_wechat(base, "芝麻开门")
    in_app = context(browser, WECHAT_UA)
    page = in_app.new_page()
    page.goto(url)
    assert "在浏览器打开" in page.inner_text("body")
    assert page.input_value("#link") == url
    in_app.close()
    assert downloads(service, url) == 0
    normal = context(browser, DESKTOP_UA)
    assert download(normal.new_page(), url) == BODY
    normal.close()
    assert downloads(service, url) == 1


def test_the_landing_page_counts_down_by_the_server_and_its_button_downloads(
    browser: Browser, service: Service, base: str
) -> None:
    """With the device's date set years off, the countdown still starts near 10:00, runs
    down, and hides the button at zero; before that the button downloads, once."""
    shared = service.share(FILE, lifetime="10m", max_downloads=1, landing=True)
    normal = context(browser, DESKTOP_UA)
    normal.clock.install(time="2001-01-01T00:00:00Z")  # a phone whose date is wrong
    page = normal.new_page()
    page.goto(shared.url)
    assert FILE in page.inner_text("h1")
    assert page.inner_text("#sha256") == service.catalog.info(FILE).sha256
    assert re.fullmatch(r"(10:00|09:5\d)", page.inner_text("#countdown"))
    page.clock.run_for(65_000)
    assert re.fullmatch(r"(08:5\d)", page.inner_text("#countdown"))
    assert downloads(service, shared.url) == 0
    assert download(page, "#download") == BODY
    assert downloads(service, shared.url) == 1
    page.clock.fast_forward("10:00")
    page.clock.run_for(2_000)
    assert page.inner_text("#countdown") == "00:00"
    assert not page.is_visible("#download") and page.is_visible(".gone")
    normal.close()


def test_a_chromium_download_counts_exactly_once(
    browser: Browser, service: Service, base: str
) -> None:
    """A whole download in Chromium, from a 5 MB file, counts one download, logged
    completed; a second click on the used-up one-time link is refused."""
    big = service.settings.files_dir / "big.bin"
    big.write_bytes(bytes(range(256)) * 20_000)
    shared = service.share("big.bin", max_downloads=1)
    page = context(browser, DESKTOP_UA).new_page()
    assert download(page, shared.url) == big.read_bytes()
    deadline = time.monotonic() + 10
    while service.downloads.usage().downloads:  # the gateway settles once all is acked
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling another process
    assert downloads(service, shared.url) == 1
    assert [e.outcome.value for e in service.events(shared.link.id)] == ["completed"]
    assert httpx.get(shared.url).status_code == 410
