"""The dashboard in a real Chromium against both Procfile processes: sign in, share a file with
a Chinese name, read the QR code off the page, download it through the gateway, revoke it.

Screenshots of each page (wide and phone-sized) are saved in test-artifacts/.
The stack's fixture is in conftest.py, the ways of driving the dashboard in browsing.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.admin_ui.browsing import (
    BODY,
    NAME,
    PHONE,
    WIDE,
    Stack,
    close_dialog,
    download,
    go_to,
    make_link,
    qr_code_of,
    sign_in,
    snap,
    tap_row,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


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
    close_dialog(page)

    go_to(page, "Links")
    tap_row(page, "links_table_wide", 0)
    expect(page.locator(".st-key-links_result")).to_contain_text(url)
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
    close_dialog(page)
    go_to(page, "Links")
    snap(page, "dashboard-6-phone-links")
    go_to(page, "Activity")
    snap(page, "dashboard-7-phone-activity")
