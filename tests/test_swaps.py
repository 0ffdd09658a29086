"""Files swapped for symlinks while a real gateway serves them: no byte from outside
files/ ever leaves, whether a file or a folder on its path is swapped, small or large."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sesame.service import Service
from tests.support import gateway_of_files, write_files

pytestmark = pytest.mark.e2e

SECRET = b"OUTSIDE-SECRET-" * 4096  # 60 KiB: kept in memory if it ever were read
INSIDE = {"small.bin": b"s" * 2048, "big.bin": b"b" * (2 * 1024 * 1024)}


PAUSE = 0.0005  # seconds each of the real and the swapped state holds: a request meets both


def swapping(target: Path, outside: Path, stop: threading.Event) -> None:
    """Replace ``target`` (a file or a folder) by a symlink to ``outside`` and back, over
    and over, each swap an atomic rename, until ``stop``. Each state holds a moment, so
    requests meet the real one too (with no pause it lasted one loop test, and a loaded
    machine's 300 requests all came in the others)."""
    real = target.with_name(target.name + ".real")
    link = target.with_name(target.name + ".link")
    while not stop.is_set():
        os.rename(target, real)
        link.symlink_to(outside, target_is_directory=outside.is_dir())
        os.rename(link, target)
        time.sleep(PAUSE)
        os.unlink(target)
        os.rename(real, target)
        time.sleep(PAUSE)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Service, Path]]:
    inside = {**INSIDE, **{f"sub/{name}": body for name, body in INSIDE.items()}}
    write_files(tmp_path / "outside", dict.fromkeys(INSIDE, SECRET))
    with gateway_of_files(tmp_path, inside) as (url, service):
        yield url, service, tmp_path
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


@pytest.mark.parametrize("swapped", ["small.bin", "big.bin", "sub"])
def test_no_byte_from_outside_under_repeated_swaps(
    served: tuple[str, Service, Path], swapped: str
) -> None:
    """While a file, or the folder holding one, is swapped for a symlink to a secret outside
    files/ thousands of times, every answer is the real file or a 404, never the secret."""
    url, service, home = served
    names = ["small.bin", "big.bin"] if swapped != "sub" else ["sub/small.bin", "sub/big.bin"]
    links = {name: url + "/d/" + service.share(name).url.rsplit("/d/", 1)[1] for name in names}
    target, outside = home / "files" / swapped, home / "outside"
    stop = threading.Event()
    swapper = threading.Thread(
        target=swapping, args=(target, outside if swapped == "sub" else outside / swapped, stop)
    )
    swapper.start()
    answers: dict[int, int] = {}
    try:
        with httpx.Client(timeout=30) as client:
            for _ in range(150):
                for name, link in links.items():
                    response = client.get(link)
                    answers[response.status_code] = answers.get(response.status_code, 0) + 1
                    assert b"OUTSIDE-SECRET" not in response.content
                    if response.status_code == 200:
                        assert response.content == INSIDE[name.rsplit("/", 1)[-1]]
    finally:
        stop.set()
        swapper.join()
    assert set(answers) <= {200, 404}
    assert answers.get(200, 0) > 0 and answers.get(404, 0) > 0  # the race really was run
