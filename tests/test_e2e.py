"""End to end: a real uvicorn process, the real CLI, and real download clients."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sesame.links import LinkSigner
from sesame.models import Link
from sesame.store.sqlite import SQLiteStore
from tests.support import (
    BIN,
    KEY,
    SAMPLES,
    free_port,
    require_binary,
    running_gateway,
    sesame_env,
    write_files,
)

pytestmark = pytest.mark.e2e

BIG = os.urandom(3 * 1024 * 1024)


@dataclass(frozen=True)
class Deployment:
    """A running gateway and what it was started with."""

    url: str
    env: dict[str, str]
    home: Path
    data_dir: Path
    log: Path

    def sesame(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the installed ``sesame`` command against this deployment."""
        return subprocess.run(
            [str(BIN / "sesame"), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def link(self, file: str, *options: str) -> dict[str, object]:
        """A new link made with ``sesame link FILE --json``."""
        data: dict[str, object] = json.loads(self.sesame("link", file, "--json", *options).stdout)
        return data


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The gateway on a free loopback port, over sample files plus a 3 MiB one."""
    home = tmp_path_factory.mktemp("e2e")
    files = write_files(home / "files", {**SAMPLES, "big.bin": BIG})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = sesame_env(
        secret_keys=KEY, files_dir=str(files), data_dir=str(home / "data"), public_url=url
    )
    log = home / "gateway.log"
    with running_gateway(env, log, port):
        yield Deployment(url, env, home, home / "data", log)


def fetch(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, cwd=cwd, capture_output=True, timeout=60, check=False)


def status_of(url: str, accept: str = "text/html") -> tuple[int, str]:
    response = httpx.get(url, headers={"Accept": accept}, timeout=10)
    return response.status_code, response.text


def test_curl_saves_the_ascii_name(deployment: Deployment, tmp_path: Path) -> None:
    """curl -OJ saves 芝麻 开门.txt under its transliteration, with the right bytes."""
    curl = require_binary("curl")
    link = deployment.link("芝麻 开门.txt")
    result = fetch(curl, "-sS", "-OJ", str(link["url"]), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["ZhiMa KaiMen.txt"]
    assert (tmp_path / "ZhiMa KaiMen.txt").read_bytes() == SAMPLES["芝麻 开门.txt"]


def test_curl_with_a_double_quote_in_the_name(deployment: Deployment, tmp_path: Path) -> None:
    """curl -OJ saves a name with a double quote (which it cannot unescape) readably."""
    curl = require_binary("curl")
    link = deployment.link('say "hi".txt')
    assert fetch(curl, "-sS", "-OJ", str(link["url"]), cwd=tmp_path).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["say 'hi'.txt"]


def test_wget_saves_the_real_name(deployment: Deployment, tmp_path: Path) -> None:
    """wget --content-disposition saves the real UTF-8 name from filename*."""
    wget = require_binary("wget")
    link = deployment.link("芝麻 开门.txt")
    result = fetch(wget, "-q", "--content-disposition", str(link["url"]), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["芝麻 开门.txt"]
    assert (tmp_path / "芝麻 开门.txt").read_bytes() == SAMPLES["芝麻 开门.txt"]


def test_aria2c_saves_the_real_name(deployment: Deployment, tmp_path: Path) -> None:
    """aria2c, a download manager, keeps the header and saves the real UTF-8 name."""
    aria2c = require_binary("aria2c")
    link = deployment.link("芝麻 开门.txt")
    result = fetch(aria2c, "-q", "--allow-overwrite=true", str(link["url"]), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["芝麻 开门.txt"]


def test_curl_resumes(deployment: Deployment, tmp_path: Path) -> None:
    """An interrupted download finishes with curl -C - and ends byte for byte equal."""
    curl = require_binary("curl")
    link = deployment.link("big.bin", "--max-downloads", "1")
    partial = tmp_path / "partial"
    partial.write_bytes(BIG[:1_234_567])
    result = fetch(curl, "-sS", "-f", "-C", "-", "-o", str(partial), str(link["url"]), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert partial.read_bytes() == BIG
    # The first attempt never happened here; the resumption finished the download: one.
    listed = json.loads(deployment.sesame("links", "--all", "--json").stdout)
    assert {item["id"]: item["downloads"] for item in listed}[link["id"]] == 1


def test_forged_token_404(deployment: Deployment) -> None:
    """A forged token answers 404, as a page and as JSON."""
    url = str(deployment.link("hello.txt")["url"])
    forged = url[:-1] + ("A" if url[-1] != "A" else "B")
    status, page = status_of(forged)
    assert status == 404 and "链接无效" in page
    status, body = status_of(forged, "application/json")
    assert status == 404 and json.loads(body)["error"] == "invalid"


def test_revoked_410(deployment: Deployment, tmp_path: Path) -> None:
    """After `sesame revoke ID`, the link answers 410 revoked."""
    link = deployment.link("hello.txt")
    assert status_of(str(link["url"]))[0] == 200
    revoked = deployment.sesame("revoke", str(link["id"]))
    assert str(link["id"]) in revoked.stdout
    status, body = status_of(str(link["url"]), "application/json")
    assert status == 410 and json.loads(body)["error"] == "revoked"
    assert status_of(str(link["url"]))[0] == 410


def test_expired_410(deployment: Deployment) -> None:
    """A link whose lifetime ended an hour ago answers 410 expired (made, not waited for)."""
    signed_at = int(time.time()) - 3600
    link = Link("expiredlink", "hello.txt", signed_at, signed_at + 600)
    store = SQLiteStore(deployment.data_dir / "sesame.db")
    store.add_link(link)
    store.close()
    token = LinkSigner([KEY.encode()], 7 * 86400).mint(link.id, link.lifetime, signed_at)
    status, body = status_of(f"{deployment.url}/d/{token}", "application/json")
    assert status == 410
    assert json.loads(body)["error"] == "expired"


def test_cli_errors_exit_non_zero(deployment: Deployment) -> None:
    """The real CLI reports a missing file on stderr with exit code 3 and no traceback."""
    result = deployment.sesame("link", "missing.txt", check=False)
    assert result.returncode == 3
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_logs_never_hold_a_full_token(deployment: Deployment) -> None:
    """The access log shows a token's first 8 characters, never the whole token."""
    link = deployment.link("hello.txt")
    url = str(link["url"])
    token = url.rsplit("/", 1)[1]
    assert status_of(url)[0] == 200
    assert status_of(url + "x")[0] == 404
    assert status_of(url.replace("/d/", "/api/get_file/") + "?utm=1")[0] == 200
    log = deployment.log.read_text(encoding="utf-8", errors="replace")
    assert f"/d/{token[:8]}…" in log
    assert token[:9] not in log


def test_downloads_are_logged(deployment: Deployment) -> None:
    """Each download's access line has the status, the link id, bytes and outcome."""
    link = deployment.link("hello.txt")
    assert status_of(str(link["url"]))[0] == 200
    line = f'HTTP/1.1" 200 - link {link["id"]} full, 14 bytes, completed'

    # The line is written just after the body is sent: poll briefly for it.
    deadline = time.monotonic() + 5
    while line not in deployment.log.read_text(encoding="utf-8", errors="replace"):
        assert time.monotonic() < deadline, "no download line in the log"
        time.sleep(0.05)
