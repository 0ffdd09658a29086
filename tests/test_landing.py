"""The optional landing page: shown to browsers, never counted, its button downloads, and its
countdown starts from the server's remaining time."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sesame.models import Outcome
from sesame.service import Service
from sesame.settings import Settings
from tests.support import BODY, FILE, T0, FakeClock, make_settings, path_of

pytestmark = pytest.mark.frozen_at(T0)

BROWSER = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
}
WECHAT = {
    **BROWSER,
    "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """FILE in tmp_path; conftest builds the service on these."""
    return make_settings(tmp_path)


def landing_link(service: Service, **options: object) -> tuple[str, str]:
    shared = service.share(FILE, landing=True, **options)  # type: ignore[arg-type]
    return shared.link.id, path_of(service, shared.url)


def downloads(service: Service, link_id: str) -> int:
    return service.link(link_id).link.downloads


def test_a_browser_sees_the_page_and_it_takes_nothing(service: Service, client: TestClient) -> None:
    """The page shows name, size, SHA-256 and time left; a one-time link stays unused."""
    link_id, path = landing_link(service, max_downloads=1)
    for _ in range(3):
        page = client.get(path, headers=BROWSER)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert FILE in page.text and "16.0 KiB" in page.text
    assert hashlib.sha256(BODY).hexdigest() in page.text
    assert 'data-remaining="600"' in page.text and ">10:00<" in page.text
    assert page.headers["cache-control"] == "private, no-store"
    assert downloads(service, link_id) == 0
    assert [event.outcome for event in service.events(link_id)] == [Outcome.LANDING] * 3


def test_the_button_downloads_and_counts(service: Service, client: TestClient) -> None:
    """The page's button asks for ?dl=1, which sends the file and takes the download."""
    link_id, path = landing_link(service, max_downloads=1)
    page = client.get(path, headers=BROWSER)
    href = re.search(r'id="download" href="([^"]+)"', page.text)
    assert href is not None and href.group(1) == "?dl=1"
    response = client.get(path + href.group(1), headers=BROWSER)
    assert response.status_code == 200 and response.content == BODY
    assert "attachment" in response.headers["content-disposition"]
    assert downloads(service, link_id) == 1
    assert client.get(path, headers=BROWSER).status_code == 410  # used up: no page either


def test_the_countdown_starts_from_the_servers_time(
    service: Service, client: TestClient, clock: FakeClock
) -> None:
    """The remaining seconds are the server's: 250 s after making a 10-minute link, 350."""
    _, path = landing_link(service, lifetime="10m")
    clock.now = T0 + 250
    page = client.get(path, headers=BROWSER)
    assert 'data-remaining="350"' in page.text and ">05:50<" in page.text
    # The device's clock is never read (a Date is only built from the server's moments).
    assert "performance.now()" in page.text
    assert "Date.now" not in page.text and "new Date()" not in page.text
    clock.now = T0 + 601
    assert client.get(path, headers=BROWSER).status_code == 410


@pytest.mark.parametrize(
    "headers",
    [
        {"accept": "*/*", "user-agent": "curl/7.88.1"},
        {"accept": "*/*", "user-agent": "Wget/1.21.3"},
        {**BROWSER, "range": "bytes=0-"},
    ],
    ids=["curl", "wget", "range-from-zero"],
)
def test_programs_get_the_file_directly(
    service: Service, client: TestClient, headers: dict[str, str]
) -> None:
    """Clients that do not ask for HTML, and Range requests, get the file as before."""
    link_id, path = landing_link(service)
    response = client.get(path, headers=headers)
    assert response.status_code in (200, 206) and response.content == BODY
    assert downloads(service, link_id) == 1


def test_resumes_and_heads_keep_their_rules(service: Service, client: TestClient) -> None:
    """HEAD gives the file's headers and a Range gets its piece, neither counted nor a page."""
    link_id, path = landing_link(service, max_downloads=1)
    head = client.head(path, headers=BROWSER)
    assert head.status_code == 200 and "attachment" in head.headers["content-disposition"]
    resumed = client.get(path, headers={**BROWSER, "range": "bytes=100-199"})
    assert resumed.status_code == 206 and resumed.content == BODY[100:200]
    assert downloads(service, link_id) == 0


def test_links_without_a_landing_page_download_in_browsers(
    service: Service, client: TestClient
) -> None:
    """A link made without landing=True downloads at once, as it always did."""
    shared = service.share(FILE)
    assert client.get(path_of(service, shared.url), headers=BROWSER).content == BODY


def test_wechat_still_gets_the_open_in_browser_page(service: Service, client: TestClient) -> None:
    """In WeChat's browser a landing link shows how to open the system browser instead."""
    link_id, path = landing_link(service)
    page = client.get(path, headers=WECHAT)
    assert "在浏览器打开" in page.text and 'id="download"' not in page.text
    assert downloads(service, link_id) == 0


def test_a_keyword_rule_can_give_landing_links(service: Service, client: TestClient) -> None:
    """Links issued for a rule with landing=True have the page."""
    service.add_rule("芝麻开门", FILE, landing=True)
    shared = service.link_for_keyword("芝麻开门", "oWx1p5ABCDEFGHIJKLMNOPQRSTUV")
    assert shared is not None and shared.link.landing
    page = client.get(path_of(service, shared.url), headers=BROWSER)
    assert 'id="download"' in page.text


@pytest.mark.parametrize("agent", ["browser", "wechat", "preview", "error"])
def test_every_page_has_a_strict_csp(service: Service, client: TestClient, agent: str) -> None:
    """Landing, open-in-browser, preview and error pages load nothing from elsewhere, and their
    scripts carry the nonce of the Content-Security-Policy of their own response."""
    _, path = landing_link(service)
    headers = {
        "browser": BROWSER,
        "wechat": WECHAT,
        "preview": {"user-agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
        "error": BROWSER,
    }[agent]
    page = client.get(path + ("x" if agent == "error" else ""), headers=headers)
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert all(f'nonce="{nonce[1]}"' in attributes for attributes in scripts)
    assert " on" + "click=" not in page.text
