"""Fixtures every test module shares: settings in tmp_path, sample files, a frozen clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesame.service import Service
from sesame.settings import Settings, load_settings
from tests.support import KEY, SAMPLES, FakeClock


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SESAME_* variable or .env of the developer's leaks into a test."""
    for name in [n for n in os.environ if n.startswith("SESAME_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """A files folder holding SAMPLES."""
    root = tmp_path / "files"
    for name, body in SAMPLES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


@pytest.fixture
def settings(tmp_path: Path, files_dir: Path) -> Settings:
    """Settings with a fixed key, the sample files and state in tmp_path."""
    return load_settings(
        secret_keys=KEY,
        files_dir=files_dir,
        data_dir=tmp_path / "data",
        public_url="http://sesame.test",
    )


@pytest.fixture
def clock() -> FakeClock:
    """A clock frozen at support.NOW; tests move it with ``clock.advance()``."""
    return FakeClock()


@pytest.fixture
def service(settings: Settings, clock: FakeClock) -> Iterator[Service]:
    """A Service on real SQLite and real files, running on the frozen clock."""
    service = Service.from_settings(settings, clock=clock)
    yield service
    service.store.close()
