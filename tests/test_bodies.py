"""Small files kept in memory: the right bytes, and never a stale version."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient

from gateway.bodies import SmallFiles
from sesame.service import Service
from tests.support import SAMPLES


def test_small_file_is_kept(tmp_path: Path) -> None:
    """A small file's bytes come back, and a second call does not read the file again."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"one")
    small = SmallFiles(max_size=16)
    stat = path.stat()
    assert small.body(path, stat) == b"one"
    path.unlink()  # gone from the disk: only memory can answer
    assert small.body(path, stat) == b"one"


def test_replaced_file_is_read_again(tmp_path: Path) -> None:
    """A file replaced by another version (new inode, size or mtime) is read again."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"one")
    small = SmallFiles(max_size=16)
    assert small.body(path, path.stat()) == b"one"
    (tmp_path / "new").write_bytes(b"two!")
    os.replace(tmp_path / "new", path)
    assert small.body(path, path.stat()) == b"two!"


def test_large_file_is_not_kept(tmp_path: Path) -> None:
    """A file over the size limit is left to the streaming response."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 17)
    assert SmallFiles(max_size=16).body(path, path.stat()) is None


def test_the_gateway_sends_small_files_from_memory(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncapped link's small file is sent without opening it; a capped one is paced from
    the file instead."""
    plain = service.share("hello.txt").url.removeprefix(service.settings.public_url)
    capped = service.share("hello.txt", rate="1MiB").url.removeprefix(service.settings.public_url)

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(anyio, "open_file", no_open)
    assert client.get(plain).content == SAMPLES["hello.txt"]
    with pytest.raises(AssertionError, match="opened"):
        client.get(capped)
