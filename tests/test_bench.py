"""The benchmark still runs and compares what it claims to compare."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import REPO, sesame_env

pytestmark = pytest.mark.e2e


def test_bench_smoke() -> None:
    """python -m bench --smoke prints a rate for each app and their ratio."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=REPO,
        env=sesame_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"bare Starlette route \(seed\)\s+\d+ req/s", result.stdout)
    assert re.search(r"Sesame /d/\{token\}\s+\d+ req/s", result.stdout)
    assert re.search(r"ratio Sesame / bare\s+\d+\.\d\d", result.stdout)
