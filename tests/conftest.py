"""Fixtures every test folder shares: settings in tmp_path, sample files, a frozen clock, a
Service and an in-process client on them; a redis-server and a Chromium for the tests that
drive real ones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, sync_playwright

from gateway.app import create_app
from sesame.service import Service
from sesame.settings import Settings, load_settings
from tests.support import KEY, NOW, SAMPLES, FakeClock, redis_server, require_binary, write_files

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SESAME_* variable or .env of the developer's leaks into a test."""
    for name in [n for n in os.environ if n.startswith("SESAME_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """A files folder holding SAMPLES."""
    return write_files(tmp_path / "files", SAMPLES)


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
def clock(request: pytest.FixtureRequest) -> FakeClock:
    """A clock frozen at support.NOW, or at the time of the test's ``frozen_at`` mark; tests
    move it with ``clock.advance()`` or by setting ``clock.now``."""
    mark = request.node.get_closest_marker("frozen_at")
    return FakeClock(NOW if mark is None else mark.args[0])


@pytest.fixture
def service(settings: Settings, clock: FakeClock) -> Iterator[Service]:
    """A Service on ``settings`` (real SQLite, real files), running on ``clock``."""
    service = Service.from_settings(settings, clock=clock)
    yield service
    service.store.close()


@pytest.fixture
def client(service: Service) -> TestClient:
    """The gateway in process, on ``service``."""
    return TestClient(create_app(service.settings, service))


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One private redis-server for the whole run, started when a test first needs it."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The URL of the run's redis-server, emptied for this test as if it were new."""
    with redis.Redis.from_url(redis_server_url) as connection:
        connection.flushall()
    return redis_server_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test module."""
    executable = require_binary("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
