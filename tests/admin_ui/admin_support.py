"""What the dashboard's tests share that is not a fixture: constants and small helpers."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "admin_ui" / "app.py"
PASSWORD = "芝麻开门 open-Sésame"  # not ASCII on purpose
KEY = "dashboard-test-key-0123456789abcdefghijklmnopq"
ZONE = "Asia/Shanghai"  # UTC+8 all year: local times in tests are predictable
FILES = {
    "welcome.txt": b"welcome to sesame\n",
    "芝麻 开门.txt": "芝麻开门 — open sesame\n".encode(),
}


def errors(at: AppTest) -> list[str]:
    """The text of every error box on the page."""
    return texts(at.error)


def texts(elements: Iterable[Any]) -> list[str]:
    """The text of Markdown elements, without the escapes that kept it literal."""
    return [re.sub(r"\\(.)", r"\1", element.value) for element in elements]


def require(path: str) -> str:
    """``path`` if that program is installed; otherwise skip the test, or fail it when
    CI=true (CI must run every test)."""
    found = shutil.which(path)
    if found is None:
        reason = f"{path} is not installed (Debian: see scripts/system-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run every test")
        pytest.skip(reason)
    return found
