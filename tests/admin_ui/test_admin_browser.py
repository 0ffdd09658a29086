"""The dashboard in a real Chromium against both Procfile processes: sign in, share a file with
a Chinese name, read the QR code off the page, download it through the gateway, revoke it.

Screenshots of each page (wide and phone-sized) are saved in test-artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from playwright.sync_api import Browser, Error, Page, expect

from tests.support import (
    BIN,
    KEY,
    PASSWORD,
    REPO,
    answers,
    decode_qr,
    free_port,
    running_process,
    sesame_env,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
NAME = "芝麻 开门.txt"
BODY = "芝麻开门 — open sesame\n".encode() * 100
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Stack:
    gateway: str
    dashboard: str


@pytest.fixture
def stack(tmp_path: Path, dashboard_settings: Path) -> Iterator[Stack]:
    """The Procfile's two processes under honcho, as `make run` starts them, on free ports,
    sharing the files in ``dashboard_settings`` and their state in tmp_path."""
    web, admin = free_port(), free_port()
    env = sesame_env(
        files_dir=str(dashboard_settings),
        data_dir=str(tmp_path / "data"),
        store_url=f"sqlite:///{tmp_path / 'data' / 'sesame.db'}",
        secret_keys=KEY,
        public_url=f"http://127.0.0.1:{web}",
        admin_password=PASSWORD,
        host="127.0.0.1",
        admin_host="127.0.0.1",
        admin_port=str(admin),
    )
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    (dashboard_settings / NAME).unlink()  # the browser uploads it
    no_dotenv = tmp_path / "empty.env"  # honcho's .env would override these variables
    no_dotenv.write_text("")
    log = tmp_path / "honcho.log"
    command = [str(BIN / "honcho"), "start", "-f", "Procfile", "-e", str(no_dotenv), "-p", str(web)]
    gateway, dashboard = f"http://127.0.0.1:{web}", f"http://127.0.0.1:{admin}"
    with running_process(command, log, env=env, cwd=REPO) as honcho:
        wait_until(lambda: answers(f"{gateway}/healthz"), honcho, log)
        wait_until(lambda: answers(f"{dashboard}/_stcore/health"), honcho, log)
        yield Stack(gateway, dashboard)


def snap(page: Page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main block, so the
    viewport is stretched to the content first."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size or WIDE
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain] *')]"
        ".map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 40)})
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    page.set_viewport_size(size)


def sign_in(page: Page, stack: Stack) -> None:
    page.goto(stack.dashboard)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Share a file")).to_be_visible(timeout=15_000)


def go_to(page: Page, title: str) -> None:
    """Opens a page from the navigation, which is behind the menu button on a phone."""
    menu = page.get_by_test_id("stExpandSidebarButton")
    if menu.is_visible():
        menu.click()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    collapse = page.get_by_test_id("stSidebarCollapseButton")
    if (page.viewport_size or WIDE)["width"] < 640 and collapse.is_visible():
        collapse.click()


def make_link(page: Page) -> str:
    page.locator(".st-key-share_submit button").click()
    result = page.locator(".st-key-share_result")
    expect(result.get_by_role("img")).to_be_visible()
    return result.get_by_test_id("stCode").first.inner_text().strip()


def qr_code_of(page: Page, base: str) -> str:
    """The text of the QR code on the page, read from the image the browser shows."""
    source = page.locator(".st-key-share_result").get_by_role("img").get_attribute("src")
    assert source
    return decode_qr(page.request.get(urljoin(base, source)).body())


def download(page: Page, url: str) -> tuple[str, bytes]:
    """Opens ``url`` in a new tab, as a recipient would, and returns the file it gives."""
    tab = page.context.new_page()
    with tab.expect_download() as started:
        try:
            tab.goto(url)
        except Error as exc:  # a download is not a page: Chromium aborts the navigation
            assert "Download is starting" in exc.message or "ERR_ABORTED" in exc.message
    tab.close()
    path = started.value.path()
    return started.value.suggested_filename, Path(path).read_bytes()


def test_share_scan_download_revoke(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    """Sign in, upload and share a file with a Chinese name, decode the page's QR code to
    the URL shown, download the file by that URL with its name and bytes, revoke the link
    and see the gateway refuse it, see the download in the activity."""
    page = browser.new_context(viewport=WIDE, timezone_id="Asia/Shanghai").new_page()
    page.goto(stack.dashboard)
    expect(page.get_by_label("Password", exact=True)).to_be_visible(timeout=15_000)
    snap(page, "dashboard-1-sign-in")
    sign_in(page, stack)

    source = tmp_path / "upload" / NAME
    source.parent.mkdir()
    source.write_bytes(BODY)
    page.locator(".st-key-upload_file input[type=file]").set_input_files(source)
    expect(page.get_by_text(f"Added “{NAME}”")).to_be_visible()
    page.locator(".st-key-share_lifetime").get_by_role("radio", name="1 hour").click()
    url = make_link(page)
    assert url.startswith(f"{stack.gateway}/d/")
    expect(page.locator(".st-key-share_result")).to_contain_text("(UTC+8)")
    snap(page, "dashboard-2-share")

    assert qr_code_of(page, stack.dashboard) == url
    assert download(page, url) == (NAME, BODY)

    go_to(page, "Links")
    page.locator(".st-key-links_revoke button").click()
    page.locator(".st-key-links_revoke_confirm button").click()
    expect(page.get_by_text(f"Revoked the link to “{NAME}”")).to_be_visible()
    assert httpx.get(url).status_code == 410
    snap(page, "dashboard-3-links")

    go_to(page, "Activity")
    expect(page.get_by_test_id("stMetric").first).to_contain_text("1")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    snap(page, "dashboard-4-activity")


def test_on_a_phone(stack: Stack, browser: Browser) -> None:
    """On a phone-sized screen every page is reachable and the link is made in one tap."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, stack)
    url = make_link(page)
    assert qr_code_of(page, stack.dashboard) == url
    snap(page, "dashboard-5-phone-share")
    go_to(page, "Links")
    snap(page, "dashboard-6-phone-links")
    go_to(page, "Activity")
    snap(page, "dashboard-7-phone-activity")
