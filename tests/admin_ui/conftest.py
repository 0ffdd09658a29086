"""Fixtures for the dashboard's tests: its settings in tmp_path, driven through AppTest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from admin_ui import signin
from sesame.service import Service
from sesame.settings import load_settings
from tests.support import APP, FILES, KEY, PASSWORD, ZONE, write_files


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
