"""How the browser tests drive the dashboard: sizes of screen, signing in, the pages, making
a link, reading its QR code, downloading, screenshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from playwright.sync_api import Error, Page, expect

from tests.support import PASSWORD, REPO, decode_qr

# Where snap() saves: test-artifacts/, or SESAME_SCREENSHOTS (scripts/screenshots).
ARTIFACTS = Path(os.environ.get("SESAME_SCREENSHOTS") or REPO / "test-artifacts")
NAME = "芝麻 开门.txt"
BODY = "芝麻开门 — open sesame\n".encode() * 100
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Stack:
    """Where the gateway and the dashboard answer."""

    gateway: str
    dashboard: str


def snap(page: Page, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main block, so the
    viewport is stretched to the content first."""
    ARTIFACTS.mkdir(exist_ok=True)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=15_000)  # run done
    size = page.viewport_size or WIDE
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain] *')]"
        ".map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 40)})
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    page.set_viewport_size(size)


def sign_in(page: Page, stack: Stack, query: str = "") -> None:
    """Opens the dashboard (``query``: ``?lang=zh_CN``, ...) and signs in, in any language."""
    page.goto(stack.dashboard + query)
    page.locator("input[type=password]").fill(PASSWORD)
    page.locator(".st-key-signin_submit button").click()
    expect(page.locator(".st-key-share_submit")).to_be_visible(timeout=15_000)


def go_to(page: Page, title: str, path: str | None = None) -> None:
    """Opens a page from the navigation (its link ``/path``, default ``title`` in lower
    case), which is behind the menu button on a phone, and waits for its heading."""
    menu = page.get_by_test_id("stExpandSidebarButton")
    if menu.is_visible():
        menu.click()
    path = path or title.lower()
    page.get_by_test_id("stSidebarNav").locator(f"a[href$='/{path}']").click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=15_000)  # run done
    collapse = page.get_by_test_id("stSidebarCollapseButton")
    if (page.viewport_size or WIDE)["width"] < 640 and collapse.is_visible():
        collapse.click()


def make_link(page: Page) -> str:
    """Presses Make link; the URL the result shows (in a dialog)."""
    page.locator(".st-key-share_submit button").click()
    result = page.locator(".st-key-share_result")
    expect(result.get_by_role("img")).to_be_visible(timeout=15_000)
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


def close_dialog(page: Page) -> None:
    """Closes the dialog on the page (the made link's)."""
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)


def tap_row(page: Page, table: str, row: int) -> None:
    """Taps row ``row`` (0: the first) of the table in the container ``table``: a data grid
    drawn on a canvas, its header and rows 35 px high, the selection box at the left."""
    grid = page.locator(f".st-key-{table} [data-testid=stDataFrame]")
    expect(grid).to_be_visible()
    # The page may still move the grid (a caption or a toolbar drawn above it late): tap
    # only once it stayed where it is for a moment, or the tap lands beside the row.
    box = grid.bounding_box()
    for _ in range(50):
        page.wait_for_timeout(100)
        again = grid.bounding_box()
        if again == box:
            break
        box = again
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 * (row + 1) + 17)
