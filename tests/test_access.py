"""The access log: one line per request, never a whole token, and a download's outcome."""

from __future__ import annotations

import logging
import random
import string

import pytest
from fastapi.testclient import TestClient

from gateway.access import RedactTokens, _any_request_line, _request_line, redact
from sesame.service import Service


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sesame.access"]


def test_a_download_has_one_line_with_its_outcome(
    client: TestClient, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """A download's line has the cut token, the status, the link id, bytes and outcome."""
    shared = service.share("hello.txt")
    token = shared.url.rsplit("/", 1)[1]
    caplog.set_level(logging.INFO, "sesame.access")
    assert client.get(f"/d/{token}?utm=1").status_code == 200
    (line,) = lines(caplog)
    assert f'"GET /d/{token[:8]}…?utm=1 HTTP/1.1" 200 - link {shared.link.id} full' in line
    assert line.endswith("14 bytes, completed") and token[:9] not in line


def test_refusals_and_other_routes_have_their_line(
    client: TestClient, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """A forged token, a revoked link and the health check each get one plain line."""
    shared = service.share("hello.txt")
    service.revoke(shared.link.id)
    token = shared.url.rsplit("/", 1)[1]
    caplog.set_level(logging.INFO, "sesame.access")
    client.get("/d/not-a-token-at-all")
    client.get(f"/d/{token}")
    client.get("/healthz")
    logged = lines(caplog)
    assert [line.split('" ')[1] for line in logged] == ["404", "410", "200"]
    assert all(token[:9] not in line for line in logged)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("GET /d/WyJabcdefghijk.xyz HTTP/1.1", "GET /d/WyJabcde… HTTP/1.1"),
        ("/api/get_file/WyJabcdefghijk?x=1", "/api/get_file/WyJabcde…?x=1"),
        ("/d/WyJabcdefghijk/qr.png", "/d/WyJabcde…/qr.png"),
        ("/d/short", "/d/short…"),
        ("/healthz", "/healthz"),
    ],
)
def test_tokens_are_cut_to_eight_characters(text: str, expected: str) -> None:
    """Wherever a download path appears, only a token's first 8 characters remain."""
    assert redact(text) == expected


def test_uvicorns_access_lines_are_cut_too() -> None:
    """Run without --no-access-log, uvicorn's own lines lose their tokens as well."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s"',
        ("1.2.3.4", "GET", "/d/WyJabcdefghijk"),
        None,
    )
    RedactTokens().filter(record)
    assert record.getMessage() == '1.2.3.4 - "GET /d/WyJabcde…"'


@pytest.mark.parametrize(
    "target",
    [
        "/d//{token}",
        "//d/{token}",
        "/D/{token}",
        "/d/ {token}",
        "/d/x?{token}",
        "/d/x?t={token}",
        "/d/x/{token}",
        "/healthz?{token}",
        "/anything/{token}",
        "/api/get_file//{token}?dl=1",
    ],
)
def test_a_token_is_cut_however_it_is_written(
    client: TestClient, service: Service, caplog: pytest.LogCaptureFixture, target: str
) -> None:
    """A whole token never reaches the access line, wherever in the path or query it is."""
    token = service.share("hello.txt").url.rsplit("/", 1)[1]
    caplog.set_level(logging.INFO, "sesame.access")
    client.get(target.format(token=token))
    (line,) = lines(caplog)
    assert token[:12] not in line and token[-12:] not in line, line


def test_control_characters_cannot_forge_a_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """%0d%0a in a path is written escaped: the access line stays one line."""
    caplog.set_level(logging.INFO, "sesame.access")
    client.get('/x%0d%0aINFO:%20127.0.0.1%20-%20"GET%20/%20HTTP/1.1"%20200')
    (line,) = lines(caplog)
    assert "\n" not in line and "\r" not in line
    assert "%0D%0A" in line


def test_a_long_path_is_cut(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """A path of 10,000 characters leaves a line of a few hundred."""
    caplog.set_level(logging.INFO, "sesame.access")
    client.get("/" + "a" * 10_000)
    (line,) = lines(caplog)
    assert len(line) < 700


def test_control_characters_are_escaped_in_any_text() -> None:
    """redact() escapes CR, LF and the other control characters it finds."""
    assert redact("a\r\nb\x1b[31m") == "a\\x0d\\x0ab\\x1b[31m"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_quick_line_of_a_download_is_the_line_in_full(method: str) -> None:
    """The common download's line (gateway.access's shortcut) is word for word what the
    general way writes, for tokens of every length and shape."""
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "_-."
    for length in [0, 1, 7, 8, 9, 40, 120, 600]:
        for _ in range(20):
            token = "".join(rng.choice(alphabet) for _ in range(length))
            scope = {"method": method, "path": f"/d/{token}", "query_string": b""}
            assert _request_line(scope) == _any_request_line(scope)
            assert token[8:] == "" or token not in _request_line(scope)
