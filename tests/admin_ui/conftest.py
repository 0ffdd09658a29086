"""Fixtures for the dashboard's tests: its settings in tmp_path, driven through AppTest, and
both Procfile processes for the browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from admin_ui import signin
from sesame.service import Service
from sesame.settings import load_settings
from tests.admin_ui.browsing import NAME, Stack
from tests.support import (
    APP,
    BIN,
    FILES,
    KEY,
    PASSWORD,
    REPO,
    ZONE,
    answers,
    free_port,
    running_process,
    sesame_env,
    wait_until,
    write_files,
)


@pytest.fixture(autouse=True)
def dashboard_settings(
    _isolated: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """SESAME_* variables for a dashboard over tmp_path (files in FILES), once the developer's
    are gone; the process-wide Service and sign-in throttle start afresh. Yields the files
    folder."""
    files = write_files(tmp_path / "files", FILES)
    monkeypatch.setenv("SESAME_FILES_DIR", str(files))
    monkeypatch.setenv("SESAME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SESAME_SECRET_KEYS", KEY)
    monkeypatch.setenv("SESAME_PUBLIC_URL", "https://sesame.test")
    monkeypatch.setenv("SESAME_ADMIN_PASSWORD", PASSWORD)
    st.cache_resource.clear()
    yield files
    st.cache_resource.clear()


@pytest.fixture
def service(dashboard_settings: Path) -> Iterator[Service]:
    """A Service of the test's own on the dashboard's settings: to set up and to check."""
    service = Service.from_settings(load_settings())
    yield service
    service.store.close()


@pytest.fixture
def slept(dashboard_settings: Path) -> list[float]:
    """The delays the sign-in throttle imposed, recorded instead of slept."""
    delays: list[float] = []
    signin.throttle().sleep = delays.append
    return delays


@pytest.fixture
def app(dashboard_settings: Path) -> AppTest:
    """The dashboard as a browser in ZONE first sees it (not run yet)."""
    at = AppTest.from_file(APP, default_timeout=20)
    at.context["timezone"] = ZONE
    return at


@pytest.fixture
def signed_in(app: AppTest) -> AppTest:
    """The dashboard after the owner signed in, on the Share page."""
    app.session_state[signin.SIGNED_IN] = True
    return app.run()


@pytest.fixture
def stack(tmp_path: Path, dashboard_settings: Path) -> Iterator[Stack]:
    """The Procfile's two processes under honcho, as `make run` starts them, on free ports,
    sharing the files in ``dashboard_settings`` and their state in tmp_path."""
    web, admin = free_port(), free_port()
    env = sesame_env(
        files_dir=str(dashboard_settings),
        data_dir=str(tmp_path / "data"),
        store_url=f"sqlite:///{tmp_path / 'data' / 'sesame.db'}",
        secret_keys=KEY,
        public_url=f"http://127.0.0.1:{web}",
        admin_password=PASSWORD,
        host="127.0.0.1",
        admin_host="127.0.0.1",
        admin_port=str(admin),
    )
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    (dashboard_settings / NAME).unlink()  # the browser uploads it
    no_dotenv = tmp_path / "empty.env"  # honcho's .env would override these variables
    no_dotenv.write_text("")
    log = tmp_path / "honcho.log"
    command = [str(BIN / "honcho"), "start", "-f", "Procfile", "-e", str(no_dotenv), "-p", str(web)]
    gateway, dashboard = f"http://127.0.0.1:{web}", f"http://127.0.0.1:{admin}"
    with running_process(command, log, env=env, cwd=REPO) as honcho:
        wait_until(lambda: answers(f"{gateway}/healthz"), honcho, log)
        wait_until(lambda: answers(f"{dashboard}/_stcore/health"), honcho, log)
        yield Stack(gateway, dashboard)
