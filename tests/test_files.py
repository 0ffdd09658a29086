"""The gateway's view of its files: opened beneath the folder on every request, never
through a link, small bodies kept per version and sent only for that version, and the
requests decided together looking at a file once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.files import Files
from sesame.catalog import Catalog
from sesame.errors import FileMissing
from sesame.service import Service
from sesame.settings import Settings
from tests.support import SAMPLES


def make_files(tmp_path: Path, max_body: int = 16) -> tuple[Files, Path]:
    root = tmp_path / "files"
    root.mkdir()
    return Files(Catalog(root), max_body), root


def read(files: Files, name: str) -> tuple[bytes | None, bytes, int]:
    """The kept body, the bytes read from the opened descriptor, and the size."""
    opened = files.open(name)
    try:
        assert opened.fd is not None
        return opened.body, os.pread(opened.fd, 1 << 20, 0), opened.size
    finally:
        opened.close()


def test_small_file_is_kept(tmp_path: Path) -> None:
    """A small file's bytes come back with an open descriptor of it and its size."""
    files, root = make_files(tmp_path)
    (root / "a.txt").write_bytes(b"one")
    assert read(files, "a.txt") == (b"one", b"one", 3)


def test_a_file_is_opened_on_every_request(tmp_path: Path) -> None:
    """A kept body is never sent for a file that is gone or replaced: each request opens it."""
    files, root = make_files(tmp_path)
    (root / "a.txt").write_bytes(b"one")
    read(files, "a.txt")
    (root / "new").write_bytes(b"two!")
    os.replace(root / "new", root / "a.txt")
    assert read(files, "a.txt") == (b"two!", b"two!", 4)
    (root / "a.txt").unlink()
    with pytest.raises(FileMissing):
        files.open("a.txt")


def test_a_kept_body_alone_is_looked_at_not_opened(tmp_path: Path) -> None:
    """Asked for its kept bytes alone, a file kept as it is now is looked at and not opened
    (no descriptor); one replaced is opened and read again; one swapped for a symlink is
    missing; one in a folder is always opened."""
    files, root = make_files(tmp_path)
    (root / "sub").mkdir()
    for name in ("a.txt", "sub/b.txt"):
        (root / name).write_bytes(b"one")
        files.open(name).close()  # now it is kept
    looked = files.open("a.txt", descriptor=False)
    assert (looked.fd, looked.body, looked.size) == (None, b"one", 3)
    looked.close()
    inner = files.open("sub/b.txt", descriptor=False)
    assert inner.fd is not None and inner.body == b"one"
    inner.close()
    (root / "new").write_bytes(b"two!")
    os.replace(root / "new", root / "a.txt")
    replaced = files.open("a.txt", descriptor=False)
    assert replaced.fd is not None and replaced.body == b"two!"
    replaced.close()
    os.rename(root / "a.txt", root / "real.txt")
    (root / "a.txt").symlink_to(root / "real.txt")
    with pytest.raises(FileMissing):
        files.open("a.txt", descriptor=False)
    (root / "a.txt").unlink()
    with pytest.raises(FileMissing):
        files.open("a.txt", descriptor=False)


def test_a_file_is_looked_at_once_for_requests_decided_together(tmp_path: Path) -> None:
    """Opened with the looks of their batch, requests see the file as its one look found
    it; the next batch (new looks) looks again and sees it replaced."""
    files, root = make_files(tmp_path)
    (root / "a.txt").write_bytes(b"one")
    files.open("a.txt").close()  # now it is kept
    looks: dict[str, os.stat_result | None] = {}
    first = files.open("a.txt", descriptor=False, looks=looks)
    (root / "new").write_bytes(b"two!")
    os.replace(root / "new", root / "a.txt")
    same = files.open("a.txt", descriptor=False, looks=looks)
    assert (first.fd, first.body, same.fd, same.body) == (None, b"one", None, b"one")
    assert list(looks) == ["a.txt"]
    again = files.open("a.txt", descriptor=False, looks={})
    assert again.fd is not None and again.body == b"two!"
    again.close()


def test_a_burst_of_downloads_looks_at_the_file_once(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downloads that arrive in one turn of the event loop are decided together, and their
    file is looked at once for all of them, each still sent the file."""
    path = service.share("hello.txt").url.removeprefix(service.settings.public_url)
    assert client.get(path).content == SAMPLES["hello.txt"]  # now it is kept
    catalog = client.app.state.files.catalog  # type: ignore[attr-defined]
    looked: list[str] = []
    real = catalog.look
    monkeypatch.setattr(catalog, "look", lambda name: looked.append(name) or real(name))

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(*(http.get(path) for _ in range(5)))

    answers = asyncio.run(burst())
    assert [(a.status_code, a.content) for a in answers] == [(200, SAMPLES["hello.txt"])] * 5
    assert looked == ["hello.txt"]


def test_a_look_never_follows_a_link(tmp_path: Path) -> None:
    """Catalog.look sees a regular file right beneath the root; a symlink (even to a file
    inside), a folder, a name in a folder or a missing one it does not."""
    files, root = make_files(tmp_path)
    (root / "sub").mkdir()
    (root / "real.txt").write_bytes(b"one")
    (root / "sub" / "b.txt").write_bytes(b"one")
    (root / "link.txt").symlink_to(root / "real.txt")
    catalog = files.catalog
    looked = catalog.look("real.txt")
    assert looked is not None and looked.st_ino == (root / "real.txt").stat().st_ino
    for name in ("link.txt", "sub", "sub/b.txt", "missing.txt"):
        assert catalog.look(name) is None


def test_large_file_is_not_kept(tmp_path: Path) -> None:
    """A file over the size limit is left to the streaming response."""
    files, root = make_files(tmp_path)
    (root / "big.bin").write_bytes(b"x" * 17)
    assert read(files, "big.bin")[0] is None


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", ".hidden", "missing.txt", ""])
def test_bad_names_stay_missing(tmp_path: Path, name: str) -> None:
    """The catalog's rules hold: a name outside it, hidden or absent is FileMissing."""
    files, root = make_files(tmp_path)
    (tmp_path / "secret").write_text("no")
    (root / ".hidden").write_text("no")
    with pytest.raises(FileMissing):
        files.open(name)


@pytest.mark.parametrize("target", ["outside", "files/inside.txt"])
def test_symlinks_are_never_followed(tmp_path: Path, target: str) -> None:
    """A file, or a folder on the way, that is a symlink is FileMissing, wherever it points."""
    files, root = make_files(tmp_path)
    (tmp_path / "outside").write_text("secret")
    (root / "inside.txt").write_text("fine")
    (root / "sub").mkdir()
    (root / "link.txt").symlink_to(tmp_path / target)
    (root / "dir").symlink_to(root / "sub")
    (root / "sub" / "x.txt").write_text("x")
    with pytest.raises(FileMissing):
        files.open("link.txt")
    with pytest.raises(FileMissing):
        files.open("dir/x.txt")
    assert read(files, "sub/x.txt")[1] == b"x"


def test_the_gateway_sends_small_files_from_memory(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncapped link's small file is sent without reading it again; a capped one is paced
    from the file instead."""
    plain = service.share("hello.txt").url.removeprefix(service.settings.public_url)
    capped = service.share("hello.txt", rate="1MiB").url.removeprefix(service.settings.public_url)
    assert client.get(plain).content == SAMPLES["hello.txt"]  # now it is kept

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read")

    monkeypatch.setattr(os, "pread", no_read)
    assert client.get(plain).content == SAMPLES["hello.txt"]
    with pytest.raises(AssertionError, match="read"):
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


def test_a_removed_file_is_missing(
    client: TestClient, service: Service, settings: Settings
) -> None:
    """Streamed without zero-copy too, a file removed since the last request is a 404 page
    and takes nothing."""
    (settings.files_dir / "big.bin").write_bytes(bytes(200 * 1024))
    shared = service.share("big.bin", max_downloads=1)
    path = shared.url.removeprefix(service.settings.public_url)
    assert client.head(path).status_code == 200  # looked at now
    (settings.files_dir / "big.bin").unlink()
    assert client.get(path).status_code == 404
    assert service.link(shared.link.id).link.downloads == 0
