"""What the WeChat, API and rule tests share: a frozen clock, a service on real files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sesame.service import Service
from sesame.settings import Settings

T0 = 1_800_000_000  # 2027-01-15 08:00:00 UTC
KEY = "wechat-api-test-key-" + "x" * 40
FILE = "InstMsiW.exe"
BODY = b"MZ" + bytes(range(256)) * 64  # about 16 KiB that looks like nothing in particular


@dataclass
class Clock:
    """A clock the test moves by hand; nothing ever sleeps."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


def make_files(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    (files / FILE).write_bytes(BODY)
    return files


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_keys": (KEY,),
        "files_dir": make_files(tmp_path),
        "data_dir": tmp_path / "state",
        "_env_file": None,
    }
    return Settings(**(values | overrides))


def make_service(tmp_path: Path, clock: Clock, **overrides: Any) -> Service:
    return Service.from_settings(make_settings(tmp_path, **overrides), clock=clock)


def path_of(service: Service, url: str) -> str:
    """A link's URL as a path for the in-process client."""
    return url.removeprefix(service.settings.public_url)
