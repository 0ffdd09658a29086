"""The HTTP API for bots: API keys, failed-auth rate limiting, making, reading and revoking
links, their QR codes, and an OpenAPI page that says so."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame.service import Service
from sesame.settings import Settings
from tests.support import (
    BODY,
    FILE,
    T0,
    FakeClock,
    decode_qr,
    make_service,
    make_settings,
    path_of,
)

pytestmark = pytest.mark.frozen_at(T0)

LINK_FIELDS = {
    "id",
    "url",
    "qr_url",
    "file",
    "status",
    "created_at",
    "expires_at",
    "max_downloads",
    "downloads",
    "bytes_served",
    "recipient",
    "note",
    "revoked_at",
    "landing",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """FILE and five failed sign-ins a minute; conftest builds the service and client."""
    return make_settings(tmp_path, api_auth_failures="5/minute")


@pytest.fixture
def auth(service: Service) -> dict[str, str]:
    return {"authorization": f"Bearer {service.create_api_key('bot').secret}"}


def make(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/links", json={"file": FILE, **body}, headers=auth)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer ssk_this-is-not-a-key"},
        {"authorization": "Bearer "},
        {"authorization": "Basic Ym90OnNlY3JldA=="},
        {"authorization": "ssk_without_a_scheme"},
    ],
    ids=["none", "wrong", "empty", "basic", "no-scheme"],
)
def test_missing_or_wrong_keys_get_401(client: TestClient, headers: dict[str, str]) -> None:
    """Without a valid Bearer key every API route answers 401 with WWW-Authenticate."""
    for method, path in (
        ("POST", "/api/links"),
        ("GET", "/api/links/x"),
        ("DELETE", "/api/links/x"),
    ):
        response = client.request(method, path, headers=headers, json={"file": FILE})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"


def test_a_revoked_key_gets_401(client: TestClient, service: Service) -> None:
    """A key works until it is revoked, and from then on gets 401."""
    created = service.create_api_key("bot")
    auth = {"authorization": f"Bearer {created.secret}"}
    assert client.post("/api/links", json={"file": FILE}, headers=auth).status_code == 201
    service.revoke_api_key(created.api_key.id)
    assert client.post("/api/links", json={"file": FILE}, headers=auth).status_code == 401
    assert service.api_keys()[0].last_used_at == T0


def test_repeated_failures_are_rate_limited(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """After SESAME_API_AUTH_FAILURES failures a client gets 429 with Retry-After, even with
    the right key; another client is not affected."""
    wrong = {"authorization": "Bearer ssk_guess"}
    assert [client.get("/api/links/x", headers=wrong).status_code for _ in range(5)] == [401] * 5
    blocked = client.get("/api/links/x", headers=auth)
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "rate_limited"
    assert 0 < int(blocked.headers["retry-after"]) <= 60
    other = TestClient(client.app, client=("192.0.2.7", 5000))
    assert other.post("/api/links", json={"file": FILE}, headers=auth).status_code == 201


def test_successes_are_not_counted_as_failures(client: TestClient, auth: dict[str, str]) -> None:
    """Many good requests never trip the failed-auth limit."""
    assert {
        client.post("/api/links", json={"file": FILE}, headers=auth).status_code for _ in range(12)
    } == {201}


def test_failures_are_counted_across_gateways_with_redis(
    tmp_path: Path, clock: FakeClock, redis_url: str
) -> None:
    """With a Redis store, failures at one gateway count at another."""
    service = make_service(tmp_path, clock, store_url=redis_url, api_auth_failures="3/minute")
    first = TestClient(create_app(service.settings, service))
    second = TestClient(create_app(service.settings, service))
    wrong = {"authorization": "Bearer ssk_guess"}
    assert [first.get("/api/links/x", headers=wrong).status_code for _ in range(3)] == [401] * 3
    assert second.get("/api/links/x", headers=wrong).status_code == 429
    service.store.close()


def test_keys_never_reach_the_log(
    client: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a good key nor a wrong one is written to any log."""
    caplog.set_level(logging.DEBUG)
    client.post("/api/links", json={"file": FILE}, headers=auth)
    client.post("/api/links", json={"file": FILE}, headers={"authorization": "Bearer ssk_oops"})
    assert auth["authorization"][7:] not in caplog.text and "ssk_oops" not in caplog.text


def test_create_answers_201_with_the_link(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """POST /api/links makes the link it was asked for; its URL downloads the file."""
    response = client.post(
        "/api/links",
        json={
            "file": FILE,
            "lifetime": "2h",
            "max_downloads": 3,
            "recipient": "alice",
            "note": "from the build bot",
        },
        headers=auth,
    )
    assert response.status_code == 201
    data = response.json()
    assert set(data) == LINK_FIELDS
    assert response.headers["location"] == f"/api/links/{data['id']}"
    assert data["url"].startswith(service.settings.public_url + "/d/")
    assert (data["file"], data["status"], data["max_downloads"]) == (FILE, "active", 3)
    assert (data["recipient"], data["note"], data["landing"]) == (
        "alice",
        "from the build bot",
        False,
    )
    assert datetime.fromisoformat(data["expires_at"]).timestamp() == T0 + 7200
    assert data["downloads"] == 0 and data["revoked_at"] is None
    assert client.get(path_of(service, data["url"])).content == BODY


def test_the_qr_code_url_is_a_png_of_the_link(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """qr_url answers a PNG (without a key) that a QR reader decodes to the link's URL."""
    data = make(client, auth)
    response = client.get(path_of(service, data["qr_url"]))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert decode_qr(response.content) == data["url"]
    forged = path_of(service, data["qr_url"]).replace("/d/", "/d/x")
    assert client.get(forged).status_code == 404


def test_get_shows_downloads_and_status(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """GET /api/links/{id} reflects downloads; a used-up link says so."""
    data = make(client, auth, max_downloads=1)
    client.get(path_of(service, data["url"]))
    again = client.get(f"/api/links/{data['id']}", headers=auth)
    assert again.status_code == 200
    assert (again.json()["downloads"], again.json()["status"]) == (1, "used up")


def test_delete_revokes_and_the_link_answers_410(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """DELETE /api/links/{id} revokes at once; doing it twice is harmless."""
    data = make(client, auth)
    first = client.delete(f"/api/links/{data['id']}", headers=auth)
    assert first.status_code == 200
    assert first.json()["status"] == "revoked" and first.json()["revoked_at"]
    assert client.delete(f"/api/links/{data['id']}", headers=auth).json() == first.json()
    gone = client.get(path_of(service, data["url"]), headers={"accept": "application/json"})
    assert gone.status_code == 410 and gone.json()["error"] == "revoked"


def test_unknown_ids_get_404(client: TestClient, auth: dict[str, str]) -> None:
    """GET and DELETE of an id that names no link answer 404 with a Problem."""
    for method in ("GET", "DELETE"):
        response = client.request(method, "/api/links/nothing", headers=auth)
        assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ({"file": "missing.exe"}, "file_missing", "missing.exe"),
        ({"file": "../etc/passwd"}, "file_missing", "not a valid file name"),
        ({"file": FILE, "lifetime": "30d"}, "invalid_input", "longest lifetime"),
        ({"file": FILE, "lifetime": "soon"}, "invalid_input", "not a lifetime"),
        ({"file": FILE, "max_downloads": 0}, "invalid_input", "max_downloads"),
        ({"file": FILE, "max_downloads": 2**63}, "invalid_input", "max_downloads"),
        ({"file": FILE, "max_downloads": 2**63 - 1}, "invalid_input", "max_downloads"),
        ({"file": FILE, "max_downloads": 10**400}, "invalid_input", "max_downloads"),
        ({"file": FILE, "lifetime": 2**63}, "invalid_input", "lifetime"),
        ({"file": FILE, "lifetime": "9" * 5000}, "invalid_input", "lifetime"),
        ({"file": FILE, "lifetime": "²"}, "invalid_input", "not a lifetime"),
        ({"file": FILE, "lifetime": "99999999999w"}, "invalid_input", "not a lifetime"),
        ({"file": FILE, "colour": "red"}, "invalid_input", "colour"),
        ({}, "invalid_input", "file"),
    ],
)
def test_bad_requests_get_422_with_a_sentence(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], error: str, words: str
) -> None:
    """Unknown files and unusable values are refused with 422 and a readable Problem."""
    response = client.post("/api/links", json=body, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"] == error and words in response.json()["message"]


def test_a_landing_link_from_the_api(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """landing: true makes a link whose browser visit shows the landing page first."""
    data = make(client, auth, landing=True)
    assert data["landing"] is True
    page = client.get(path_of(service, data["url"]), headers={"accept": "text/html"})
    assert page.status_code == 200 and "下载 · Download" in page.text


def test_the_openapi_page_describes_the_api(client: TestClient) -> None:
    """/openapi.json lists the API with its bodies, answers and key scheme, and leaves out
    the download routes and the WeChat endpoint; /docs and /redoc (CDN scripts) are off."""
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/api/links",
        "/api/links/{link_id}",
        "/d/{token}/qr.png",
        "/healthz",
        "/livez",
    }
    post = spec["paths"]["/api/links"]["post"]
    assert set(post["responses"]) == {"201", "401", "422", "429"}
    assert post["security"] == [{"API key": []}]
    assert spec["components"]["securitySchemes"]["API key"]["scheme"] == "bearer"
    request = spec["components"]["schemas"]["LinkRequest"]
    assert set(request["properties"]) == {
        "file",
        "lifetime",
        "max_downloads",
        "recipient",
        "note",
        "landing",
    }
    assert request["required"] == ["file"]
    assert set(spec["components"]["schemas"]["LinkOut"]["properties"]) == LINK_FIELDS
    link_routes = spec["paths"]["/api/links/{link_id}"]
    assert set(link_routes) == {"get", "delete"}
    assert all("404" in op["responses"] for op in link_routes.values())
    qr = spec["paths"]["/d/{token}/qr.png"]["get"]
    assert "image/png" in qr["responses"]["200"]["content"] and "security" not in qr


def test_the_largest_limit_allowed_still_downloads(
    service: Service, client: TestClient, auth: dict[str, str]
) -> None:
    """A link with the highest max_downloads the API takes downloads with 200, not 500."""
    from sesame.service import MAX_DOWNLOADS

    data = make(client, auth, max_downloads=MAX_DOWNLOADS)
    assert client.get(path_of(service, data["url"])).status_code == 200
