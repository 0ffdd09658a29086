"""The download gateway, in process: statuses, headers, ranges, limits and error pages."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.app import GC_YOUNG, create_app
from sesame.models import Outcome
from sesame.service import Service
from sesame.settings import Settings
from tests.support import KEY, NOW, REPO, SAMPLES, FakeClock, sesame_env, take

JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def client(settings: Settings, service: Service) -> Iterator[TestClient]:
    """An in-process client; server errors come back as 500s instead of being raised."""
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        yield client


def path_of(service: Service, file: str = "hello.txt", **options: object) -> str:
    """The path (``/d/TOKEN``) of a new link to ``file``."""
    url = service.share(file, **options).url  # type: ignore[arg-type]
    return url.removeprefix(service.settings.public_url)


def downloads(service: Service) -> int:
    return service.links(include_inactive=True)[0].link.downloads


def test_download(client: TestClient, service: Service) -> None:
    """A good link answers 200 with the bytes, the real name and the safety headers."""
    response = client.get(path_of(service, "芝麻 开门.txt"))
    assert response.status_code == 200
    assert response.content == SAMPLES["芝麻 开门.txt"]
    assert response.headers["content-disposition"] == (
        'attachment; filename="ZhiMa KaiMen.txt"; '
        "filename*=UTF-8''%E8%8A%9D%E9%BA%BB%20%E5%BC%80%E9%97%A8.txt"
    )
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len(SAMPLES["芝麻 开门.txt"]))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["accept-ranges"] == "bytes"


def test_double_quote_in_name(client: TestClient, service: Service) -> None:
    """A double quote never appears raw in filename=; filename* carries it encoded."""
    response = client.get(path_of(service, 'say "hi".txt'))
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"say 'hi'.txt\"; filename*=UTF-8''say%20%22hi%22.txt"
    )


def test_nested_file_named_by_its_last_part(client: TestClient, service: Service) -> None:
    """A file in a subfolder downloads under its own name, without the folder."""
    response = client.get(path_of(service, "sub/nested.bin"))
    assert response.content == SAMPLES["sub/nested.bin"]
    assert response.headers["content-type"] == "application/octet-stream"
    assert 'filename="nested.bin"' in response.headers["content-disposition"]


def test_html_file_is_an_attachment(client: TestClient, service: Service) -> None:
    """An HTML file is sent as a download in a sandbox, never rendered in our origin."""
    response = client.get(path_of(service, "page.html"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=2-5", 2, 5), ("bytes=1020-", 1020, 1023), ("bytes=-4", 1020, 1023)],
)
def test_range(
    client: TestClient, service: Service, range_header: str, start: int, end: int
) -> None:
    """A Range request answers 206 with exactly those bytes and their Content-Range."""
    response = client.get(path_of(service, "sub/nested.bin"), headers={"Range": range_header})
    assert response.status_code == 206
    assert response.content == SAMPLES["sub/nested.bin"][start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/1024"


def test_unsatisfiable_range(client: TestClient, service: Service) -> None:
    """A range past the end answers 416 with the size, and takes no download."""
    response = client.get(path_of(service, max_downloads=1), headers={"Range": "bytes=500-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */14"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private, no-store"
    assert downloads(service) == 0


def test_a_download_counts_when_its_last_byte_is_sent(client: TestClient, service: Service) -> None:
    """Pieces that stop short of the end take nothing; the piece with the last byte, the
    rest of the download, takes one."""
    path = path_of(service, max_downloads=1)
    assert client.get(path, headers={"Range": "bytes=0-2"}).status_code == 206
    assert client.get(path, headers={"Range": "bytes=3-5"}).status_code == 206
    assert downloads(service) == 0
    assert client.get(path, headers={"Range": "bytes=6-"}).status_code == 206
    assert downloads(service) == 1


def test_head(client: TestClient, service: Service) -> None:
    """HEAD gives the download's headers and no body, and is not counted."""
    path = path_of(service, max_downloads=1)
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "14"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert downloads(service) == 0
    assert service.events()[0].outcome is Outcome.HEAD
    assert client.get(path).status_code == 200


def test_max_downloads(client: TestClient, service: Service) -> None:
    """A link with max_downloads=2 serves twice, then answers 410 exhausted."""
    path = path_of(service, max_downloads=2)
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 410]
    assert client.get(path, headers=JSON).json()["error"] == "exhausted"
    assert downloads(service) == 2


def test_download_is_logged(client: TestClient, service: Service) -> None:
    """A completed download is recorded with its status, bytes and client."""
    client.get(path_of(service), headers={"User-Agent": "test-agent/1"})
    (event,) = service.events()
    assert (event.status, event.bytes_sent, event.outcome) == (200, 14, Outcome.COMPLETED)
    assert (event.at, event.user_agent) == (NOW, "test-agent/1")


def make_gone(service: Service, clock: FakeClock, code: str) -> str:
    """The path of a link that is ``code``: expired, revoked or exhausted."""
    path = path_of(service, lifetime="1m", max_downloads=1)
    link = service.links()[0].link
    if code == "expired":
        clock.advance(61)
    elif code == "revoked":
        service.revoke(link.id)
    else:
        take(service, link, 1)
    return path


GONE = ["expired", "revoked", "exhausted"]
TITLES = {
    "expired": ("链接已过期", "This link has expired"),
    "revoked": ("链接已撤销", "This link was revoked"),
    "exhausted": ("下载次数已用完", "No downloads left"),
}


@pytest.mark.parametrize("code", GONE)
def test_gone_page(client: TestClient, service: Service, clock: FakeClock, code: str) -> None:
    """An expired, revoked or used-up link answers 410 with a page in Chinese and English."""
    response = client.get(make_gone(service, clock, code), headers=BROWSER)
    assert response.status_code == 410
    assert response.headers["content-type"].startswith("text/html")
    assert "no-store" in response.headers["cache-control"]
    chinese, english = TITLES[code]
    assert chinese in response.text and english in response.text
    assert "content-disposition" not in response.headers


@pytest.mark.parametrize("code", GONE)
def test_gone_json(client: TestClient, service: Service, clock: FakeClock, code: str) -> None:
    """A client that prefers JSON gets 410 with the error code and a message."""
    response = client.get(make_gone(service, clock, code), headers=JSON)
    assert response.status_code == 410
    body = response.json()
    assert body["error"] == code
    assert body["message"]


def test_expired_json_says_when(client: TestClient, service: Service, clock: FakeClock) -> None:
    """The JSON for an expired link carries the expiry time, and the page shows it too."""
    path = make_gone(service, clock, "expired")
    assert client.get(path, headers=JSON).json()["expired_at"] == "2023-11-14T22:14:20+00:00"
    assert "2023-11-14 22:14:20 UTC" in client.get(path).text


def test_refusals_are_logged(client: TestClient, service: Service, clock: FakeClock) -> None:
    """A revoked link's refusal is in the download log as a 410."""
    client.get(make_gone(service, clock, "revoked"))
    (event,) = service.events()
    assert (event.status, event.outcome) == (410, Outcome.REFUSED)


@pytest.mark.parametrize(
    ("accept", "wants_json"),
    [
        ("application/json", True),
        ("application/json, text/plain;q=0.5", True),
        ("text/html", False),
        ("*/*", False),
        ("", False),
        ("text/html, application/json", False),
        ("application/json;q=0.9, text/html", False),
        (";;;,,=", False),
        ("json", False),
    ],
)
def test_accept_negotiation(
    client: TestClient, service: Service, clock: FakeClock, accept: str, wants_json: bool
) -> None:
    """JSON only when the client prefers it; ties and malformed Accept headers get HTML."""
    response = client.get(make_gone(service, clock, "revoked"), headers={"Accept": accept})
    assert response.status_code == 410
    kind = "application/json" if wants_json else "text/html"
    assert response.headers["content-type"].startswith(kind)


def test_alias_path(client: TestClient, service: Service) -> None:
    """The seed's /api/get_file/{token} serves the same file."""
    token = path_of(service).removeprefix("/d/")
    response = client.get(f"/api/get_file/{token}")
    assert response.status_code == 200
    assert response.content == SAMPLES["hello.txt"]


def test_healthz(client: TestClient) -> None:
    """/healthz answers ok."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_file_removed_after_link_made(
    client: TestClient, service: Service, settings: Settings
) -> None:
    """If the file is gone, the link answers 404 and its download is given back."""
    path = path_of(service, max_downloads=1)
    (settings.files_dir / "hello.txt").unlink()
    response = client.get(path, headers=JSON)
    assert response.status_code == 404
    assert response.json()["error"] == "invalid"
    assert downloads(service) == 0


def test_forged_token(client: TestClient, service: Service) -> None:
    """A token with one character changed answers 404 invalid, as page and as JSON."""
    path = path_of(service)
    forged = path[:-1] + ("A" if path[-1] != "A" else "B")
    page = client.get(forged, headers=BROWSER)
    assert page.status_code == 404
    assert "链接无效" in page.text and "This link is not valid" in page.text
    assert client.get(forged, headers=JSON).json()["error"] == "invalid"


WEIRD = {
    "very long": "A" * 20_000,
    "longer than a token may be": "WyJ4IiwxXQ." + "A" * 600,
    "unicode": "芝麻开门",
    "percent-encoded unicode": "%E8%8A%9D%E9%BA%BB",
    "percent-encoded junk": "%ff%fe%fd",
    "bad percent escape": "%zz%",
    "NUL encoded": "abc%00def",
    "slashes": "a/b/c",
    "dot dot": "..",
    "dot dot encoded": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "dot dot slash": "../../etc/passwd",
    "dot": ".",
    "dots only": "...",
    "empty": "",
    "token-shaped": "WyJ4IiwxXQ.AAAAAA.AAAA",
    "space": "%20",
    "html": "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "query": "abc?x=1",
    "fragment-like": "abc%23def",
    "backslashes": "a%5C..%5C..%5Cx",
    "CRLF": "abc%0d%0aSet-Cookie:%20x=1",
}


@pytest.mark.parametrize("token", list(WEIRD.values()), ids=list(WEIRD))
@pytest.mark.parametrize("prefix", ["/d/", "/api/get_file/"])
def test_weird_tokens_404(client: TestClient, prefix: str, token: str) -> None:
    """Any string that is not a token answers 404 (never 500), as a page or as JSON."""
    for headers in (BROWSER, JSON):
        response = client.get(prefix + token, headers=headers)
        # Like browsers and curl, the client resolves dot segments: /d/.. asks for the root,
        # whose page names no link.
        root = response.request.url.path == "/"
        assert response.status_code == (200 if root else 404)
        assert "set-cookie" not in response.headers


def test_weird_token_after_a_good_one(client: TestClient, service: Service) -> None:
    """Anything appended to a good token's path is not that link: 404."""
    path = path_of(service)
    for suffix in ("/", "/x", "%20", "==", "!!"):
        assert client.get(path + suffix).status_code == 404


def test_the_collector_leaves_start_up_alone_while_the_app_runs(
    settings: Settings, service: Service
) -> None:
    """While the gateway runs, what start-up made is frozen and the young generation is
    GC_YOUNG; once it stops, both are as they were."""
    before = gc.get_threshold()
    with TestClient(create_app(settings, service)):
        assert gc.get_threshold()[0] == GC_YOUNG
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_gateway_on_sqlite_loads_no_library_it_does_not_use(tmp_path: Path) -> None:
    """A new gateway process on the SQLite default, WeChat off, imports neither redis (nor
    what redis imports), nor qrcode and Pillow before its first QR code, nor wechatpy: each
    costs every gateway process megabytes it would never use. Drawing a QR code loads them."""
    script = """
import sys
from gateway.app import create_app
from starlette.testclient import TestClient
app = create_app()
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
with TestClient(app) as client:
    assert client.get("/livez").status_code == 200
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(tmp_path / "files"),
        data_dir=str(tmp_path / "data"),
        store_url=f"sqlite:///{tmp_path / 'data' / 'sesame.db'}",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    at_start, serving = (set(line.split()) for line in done.stdout.splitlines())
    assert "fastapi" in at_start  # the listing is real
    unused = {"redis", "cryptography", "qrcode", "PIL", "wechatpy"}
    assert at_start & unused == set()
    assert serving & unused == set()
    from sesame import qr

    assert qr.png("https://example.org/d/x").startswith(b"\x89PNG")
