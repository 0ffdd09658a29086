"""The concurrency cap across real processes: two gateways on one redis-server share it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from sesame.service import Service
from sesame.settings import load_settings
from tests.support import KEY, running_gateway, sesame_env

BODY = bytes(range(256)) * 48  # 12 KiB: three 4 KiB slices at 4 KiB/s, about 3 s


def test_two_gateways_share_one_cap(tmp_path: Path, redis_url: str) -> None:
    """With SESAME_MAX_CONCURRENT_DOWNLOADS=1, a download running at one gateway makes the
    other answer 503 with Retry-After; once it is done, the other serves."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "slow.bin").write_bytes(BODY)
    values = {
        "SECRET_KEYS": KEY,
        "FILES_DIR": str(files),
        "DATA_DIR": str(tmp_path / "data"),
        "STORE_URL": redis_url,
        "MAX_CONCURRENT_DOWNLOADS": "1",
    }
    env = sesame_env(**values)
    service = Service.from_settings(load_settings(**{k.lower(): v for k, v in values.items()}))
    token = service.share("slow.bin", rate="4KiB").url.rsplit("/", 1)[1]
    with (
        running_gateway(env, tmp_path / "first.log") as first,
        running_gateway(env, tmp_path / "second.log") as second,
    ):
        with httpx.stream("GET", f"{first}/d/{token}", timeout=20) as running:
            assert running.status_code == 200
            refused = httpx.get(f"{second}/d/{token}", headers={"accept": "application/json"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "busy"
            assert int(refused.headers["retry-after"]) > 0
            assert service.downloads.usage().downloads == 1
            assert running.read() == BODY
        _until(
            lambda: service.downloads.usage().downloads == 0
        )  # the gateway settles after sending
        assert httpx.get(f"{second}/d/{token}", timeout=20).content == BODY
    service.store.close()


def _until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the download's place was never freed"
        time.sleep(0.05)  # polling for another process, not waiting for an expiry
