"""The test helpers themselves, where a mistake would hide failures."""

from __future__ import annotations

import pytest

from tests.support import require_binary


def test_require_binary_finds_a_program() -> None:
    """require_binary returns the path of an installed program."""
    assert require_binary("sh").endswith("/sh")


def test_require_binary_skips_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing program skips the test on a developer's machine."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_binary("no-such-program-for-sesame")


def test_require_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true a missing program fails the test instead of skipping it."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run every test"):
        require_binary("no-such-program-for-sesame")
