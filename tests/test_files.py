"""The gateway's view of its files: resolved and stat'ed at most once a second, small
bodies kept per version, and never a stale file past that second."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient

from gateway.files import FRESH, Files
from sesame.catalog import Catalog
from sesame.errors import FileMissing
from sesame.service import Service
from sesame.settings import Settings
from tests.support import SAMPLES


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_files(tmp_path: Path, max_body: int = 16) -> tuple[Files, Ticks, Path]:
    root = tmp_path / "files"
    root.mkdir()
    ticks = Ticks()
    return Files(Catalog(root), max_body, ticks), ticks, root


def test_small_file_is_kept(tmp_path: Path) -> None:
    """A small file's bytes come back with its real path and size."""
    files, _, root = make_files(tmp_path)
    (root / "a.txt").write_bytes(b"one")
    served = files.get("a.txt")
    assert (served.body, served.path, served.stat.st_size) == (b"one", root / "a.txt", 3)


def test_a_file_is_looked_at_once_a_second(tmp_path: Path) -> None:
    """Within FRESH the file is not looked at again, even if it is gone; after it, its
    absence is noticed."""
    files, ticks, root = make_files(tmp_path)
    (root / "a.txt").write_bytes(b"one")
    files.get("a.txt")
    (root / "a.txt").unlink()
    ticks.now += FRESH / 2
    assert files.get("a.txt").body == b"one"
    ticks.now += FRESH
    with pytest.raises(FileMissing):
        files.get("a.txt")


def test_replaced_file_is_read_again(tmp_path: Path) -> None:
    """A file replaced by another version (new inode, size or mtime) is read again once
    FRESH has passed."""
    files, ticks, root = make_files(tmp_path)
    (root / "a.txt").write_bytes(b"one")
    assert files.get("a.txt").body == b"one"
    (root / "new").write_bytes(b"two!")
    os.replace(root / "new", root / "a.txt")
    ticks.now += FRESH
    served = files.get("a.txt")
    assert (served.body, served.stat.st_size) == (b"two!", 4)


def test_large_file_is_not_kept(tmp_path: Path) -> None:
    """A file over the size limit is left to the streaming response."""
    files, _, root = make_files(tmp_path)
    (root / "big.bin").write_bytes(b"x" * 17)
    assert files.get("big.bin").body is None


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", ".hidden", "missing.txt", ""])
def test_bad_names_stay_missing(tmp_path: Path, name: str) -> None:
    """The catalog's rules hold: a name outside it, hidden or absent is FileMissing."""
    files, _, root = make_files(tmp_path)
    (tmp_path / "secret").write_text("no")
    (root / ".hidden").write_text("no")
    with pytest.raises(FileMissing):
        files.get(name)


def test_the_gateway_sends_small_files_from_memory(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncapped link's small file is sent without opening it; a capped one is paced from
    the file instead."""
    plain = service.share("hello.txt").url.removeprefix(service.settings.public_url)
    capped = service.share("hello.txt", rate="1MiB").url.removeprefix(service.settings.public_url)
    assert client.get(plain).content == SAMPLES["hello.txt"]  # now it is kept

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(anyio, "open_file", no_open)
    assert client.get(plain).content == SAMPLES["hello.txt"]
    with pytest.raises(AssertionError, match="opened"):
        client.get(capped)


def test_a_kept_body_has_the_streamed_files_headers(client: TestClient, service: Service) -> None:
    """From memory or from the disk, a file is sent with the same headers; HEAD sends none
    of its bytes."""
    path = service.share("hello.txt").url.removeprefix(service.settings.public_url)
    kept = client.get(path)
    streamed = client.get(path, headers={"Range": "bytes=0-"})
    assert (kept.status_code, streamed.status_code) == (200, 206)
    same = {k: v for k, v in streamed.headers.items() if k not in ("content-range", "date")}
    assert {k: v for k, v in kept.headers.items() if k != "date"} == same
    head = client.head(path)
    assert head.content == b"" and head.headers["content-length"] == str(len(kept.content))


def test_a_file_removed_within_the_second_is_missing(
    client: TestClient, service: Service, settings: Settings
) -> None:
    """Streamed without zero-copy too, a file removed while gateway.files still trusts its
    last look is a 404 page and takes nothing."""
    (settings.files_dir / "big.bin").write_bytes(bytes(200 * 1024))
    shared = service.share("big.bin", max_downloads=1)
    path = shared.url.removeprefix(service.settings.public_url)
    assert client.head(path).status_code == 200  # looked at now
    (settings.files_dir / "big.bin").unlink()
    assert client.get(path).status_code == 404
    assert service.link(shared.link.id).link.downloads == 0
