"""What each real download client saves for a file with a Chinese name, as the README says:
curl -OJ the ASCII transliteration, wget --content-disposition, aria2c and Chromium the real
name; curl -O and plain wget the token. A real gateway process, the installed programs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Error as PlaywrightError

from tests.support import BIN, KEY, free_port, require_binary, running_gateway, sesame_env

pytestmark = pytest.mark.e2e

NAME = "季度报告.pdf"
BODY = b"%PDF-1.4\n% a quarterly report\n" + bytes(range(256)) * 16


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A link, without limit, to NAME on a gateway process on a free loopback port."""
    home = tmp_path_factory.mktemp("clients")
    (home / "files").mkdir()
    (home / "files" / NAME).write_bytes(BODY)
    url = f"http://127.0.0.1:{free_port()}"
    env = sesame_env(
        secret_keys=KEY, files_dir=str(home / "files"), data_dir=str(home / "data"), public_url=url
    )
    made = subprocess.run(
        [str(BIN / "sesame"), "link", NAME, "--ttl", "1h", "--json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=True,
    )
    with running_gateway(env, home / "gateway.log", int(url.rsplit(":", 1)[1])):
        yield str(json.loads(made.stdout)["url"])


@pytest.mark.parametrize(
    ("program", "options", "saved"),
    [
        ("curl", ["-sS", "-OJ"], "JiDuBaoGao.pdf"),  # reads filename= only: the transliteration
        ("curl", ["-sS", "-O"], None),  # the last part of the URL: the token
        ("wget", ["-q", "--content-disposition"], NAME),  # filename*
        ("wget", ["-q"], None),
        ("aria2c", ["-q"], NAME),  # reads Content-Disposition by default
    ],
    ids=["curl -OJ", "curl -O", "wget --content-disposition", "wget", "aria2c"],
)
def test_what_each_client_saves(
    link: str, tmp_path: Path, program: str, options: list[str], saved: str | None
) -> None:
    """Each client saves the whole file under the name the README gives for it."""
    command = [require_binary(program), *options, link]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    (file,) = tmp_path.iterdir()
    assert file.name == (saved or link.rsplit("/", 1)[1])
    assert file.read_bytes() == BODY


@pytest.mark.browser
def test_chromium_saves_the_real_name(browser: Browser, link: str, tmp_path: Path) -> None:
    """Chromium (Playwright's download) saves the real name, from filename*."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    with page.expect_download() as info:
        try:
            page.goto(link)
        except PlaywrightError as exc:  # a download ends the navigation
            assert "Download is starting" in str(exc)
    download = info.value
    assert download.suggested_filename == NAME
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes() == BODY
    context.close()
