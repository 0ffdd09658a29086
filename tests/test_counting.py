"""The counting rules, in-process with a frozen clock: what takes a download and what not."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sesame.models import Outcome
from sesame.service import Service
from sesame.settings import Settings
from tests.support import T0, FakeClock, make_settings, write_files

pytestmark = pytest.mark.frozen_at(T0)

BODY = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """data.bin in tmp_path; conftest builds the service and client on these."""
    return make_settings(tmp_path, files_dir=write_files(tmp_path / "files", {"data.bin": BODY}))


def path_of(service: Service, **options: object) -> tuple[str, str]:
    shared = service.share("data.bin", **options)  # type: ignore[arg-type]
    return shared.link.id, shared.url.removeprefix(service.settings.public_url)


def downloads(service: Service, link_id: str) -> int:
    return service.link(link_id).link.downloads


def test_head_never_counts(service: Service, client: TestClient) -> None:
    """HEAD answers with headers only and leaves a one-time link untouched."""
    link_id, path = path_of(service, max_downloads=1)
    for _ in range(3):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b""
    assert downloads(service, link_id) == 0
    assert client.get(path).content == BODY


PREVIEWERS = [
    {"user-agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
    {"user-agent": "TelegramBot (like TwitterBot)"},
    {"user-agent": "WhatsApp/2.23.20.0 A"},
    {"user-agent": "facebookexternalhit/1.1"},
    {"user-agent": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"},
    {"user-agent": "Twitterbot/1.0"},
    {"user-agent": "LinkedInBot/1.0 (compatible; Mozilla/5.0)"},
    {"user-agent": "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5"},
    {"sec-purpose": "prefetch;prerender"},
    {"purpose": "prefetch"},
    {"x-purpose": "preview"},
    {"x-moz": "prefetch"},
]


@pytest.mark.parametrize("headers", PREVIEWERS, ids=lambda h: next(iter(h.values()))[:20])
def test_previews_get_a_card_and_take_nothing(
    service: Service, client: TestClient, headers: dict[str, str]
) -> None:
    """Preview bots and prefetches get an HTML card naming the file; nothing is counted."""
    link_id, path = path_of(service, max_downloads=1)
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "data.bin" in response.text and "10.0 KiB" in response.text
    assert downloads(service, link_id) == 0
    assert service.events(link_id)[0].outcome is Outcome.PREVIEW


def test_a_one_time_link_survives_previews_and_serves_once(
    service: Service, client: TestClient
) -> None:
    """Slack and Telegram unfurl it, the recipient downloads it, everyone after gets 410."""
    _, path = path_of(service, max_downloads=1)
    for agent in ("Slackbot-LinkExpanding 1.0", "TelegramBot (like TwitterBot)"):
        assert client.get(path, headers={"user-agent": agent}).status_code == 200
    assert client.get(path, headers={"range": "bytes=0-99"}).status_code == 206
    assert client.get(path, headers={"range": "bytes=100-"}).content == BODY[100:]
    for _ in range(2):
        assert client.get(path).status_code == 410


def test_a_piece_with_the_last_byte_counts_and_one_short_of_it_does_not(
    service: Service, client: TestClient
) -> None:
    """bytes=0-9 (a probe, a first segment) takes nothing; bytes=10- holds the file's last
    byte, so it finishes a download and takes one; bytes=-10 from the same client a moment
    later is a piece of that download (it joins it); from another client it takes one."""
    link_id, path = path_of(service, max_downloads=3)
    assert client.get(path, headers={"range": "bytes=0-9"}).content == BODY[:10]
    assert client.get(path, headers={"range": "bytes=10-"}).content == BODY[10:]
    assert client.get(path, headers={"range": "bytes=-10"}).content == BODY[-10:]
    assert downloads(service, link_id) == 1
    other = {"range": "bytes=-10", "user-agent": "another program"}
    assert client.get(path, headers=other).content == BODY[-10:]
    assert downloads(service, link_id) == 2
    counted = [event.counted for event in reversed(service.events(link_id))]
    assert counted == [False, True, False, True]


def test_resume_after_expiry_within_grace(
    service: Service, client: TestClient, clock: FakeClock
) -> None:
    """A download begun before expiry may resume during the grace period, and no later."""
    _, path = path_of(service, lifetime="10m")
    clock.now = T0 + 590
    assert client.get(path, headers={"range": "bytes=0-99"}).status_code == 206
    clock.now = T0 + 600 + 3600
    resumed = client.get(path, headers={"range": "bytes=100-"})
    assert resumed.status_code == 206 and resumed.content == BODY[100:]
    assert client.get(path).status_code == 410  # a new download is not a resumption
    clock.now = T0 + 600 + 3601
    assert client.get(path, headers={"range": "bytes=100-"}).status_code == 410


def test_no_grace_without_a_download_before_expiry(
    service: Service, client: TestClient, clock: FakeClock
) -> None:
    """An expired link that nobody began downloading cannot be 'resumed'."""
    _, path = path_of(service, lifetime="10m")
    clock.now = T0 + 601
    response = client.get(path, headers={"range": "bytes=100-", "accept": "application/json"})
    assert response.status_code == 410 and response.json()["error"] == "expired"


def test_bytes_served_never_exceed_limit_plus_one_files(
    service: Service, client: TestClient
) -> None:
    """Resumptions of a one-time link stop before (1 + 1) x the file's size is served."""
    link_id, path = path_of(service, max_downloads=1)
    assert client.get(path).content == BODY
    served = len(BODY)
    while (response := client.get(path, headers={"range": "bytes=1-"})).status_code == 206:
        served += len(response.content)
    assert response.status_code == 410
    assert served <= 2 * len(BODY)
    assert service.link(link_id).link.bytes_served == served


def test_revocation_stops_every_kind_of_request(service: Service, client: TestClient) -> None:
    """After revoke, full, resumed, HEAD and preview requests all get 410."""
    link_id, path = path_of(service)
    assert client.get(path).status_code == 200
    service.revoke(link_id)
    for headers in ({}, {"range": "bytes=5-"}, {"user-agent": "Slackbot"}):
        assert client.get(path, headers=headers).status_code == 410
    assert client.head(path).status_code == 410


def test_every_request_to_a_link_is_logged(service: Service, client: TestClient) -> None:
    """Completed, refused, HEAD and preview requests each leave one log row."""
    link_id, path = path_of(service, max_downloads=1)
    client.head(path)
    client.get(path, headers={"user-agent": "Twitterbot/1.0"})
    client.get(path)
    client.get(path)
    outcomes = [event.outcome for event in reversed(service.events(link_id))]
    assert outcomes == [Outcome.HEAD, Outcome.PREVIEW, Outcome.COMPLETED, Outcome.REFUSED]
    assert [event.status for event in reversed(service.events(link_id))] == [200, 200, 200, 410]


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI",
        "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/116.0 Mobile Safari/537.36 "
        "V1_AND_SQ_8.9.83 QQ/8.9.83.12605 NetType/WIFI",
    ],
    ids=["wechat", "qq"],
)
def test_in_app_browsers_are_told_to_open_the_system_browser(
    service: Service, client: TestClient, agent: str
) -> None:
    """WeChat and QQ get a page with the link to copy; the visit takes nothing."""
    link_id, path = path_of(service, max_downloads=1)
    page = client.get(path, headers={"user-agent": agent})
    assert page.status_code == 200 and "在浏览器打开" in page.text
    assert path in page.text
    assert downloads(service, link_id) == 0
    assert client.get(path, headers={"user-agent": "Mozilla/5.0 Firefox/130.0"}).content == BODY
