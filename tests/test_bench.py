"""The benchmark still runs and compares what it claims to compare."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import REPO, require_binary, sesame_env

pytestmark = pytest.mark.e2e


def test_bench_smoke() -> None:
    """python -m bench --smoke measures every figure against nginx and prints the table."""
    require_binary("wrk")
    require_binary("nginx")
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
    out = result.stdout
    for label in (
        "naive gateway .the seed's route., uvicorn's defaults",
        "naive gateway at its best",
        "Sesame, unlimited link",
        "Sesame, link with a large limit",
        "bare ASGI app",
    ):
        assert re.search(rf"{label}.*\s+\d+\s+\d+-\d+\s+\d+\.\d\d\n", out), out
    assert len(re.findall(r"nginx static\s+\d+\s+\d+-\d+\s+1\.00\n", out)) == 3, out
    targets = re.findall(r"/ .*: (\d+\.\d\d) \(target >= [\d.]+, (met|not met)\)\n", out)
    assert len(targets) == 3, out
    assert len(re.findall(r"Sesame direct\s+\d+\s+\d+-\d+\s+\d+\.\d\d\n", out)) == 2, out
    assert len(re.findall(r"Sesame offload, behind nginx\s+\d+", out)) == 2, out
    assert len(re.findall(r", 8 clients\s+\d+\s+\d+-\d+\n", out)) == 2, out


def test_bench_dashboard_small() -> None:
    """python -m bench --dashboard times every page's data on SQLite and Redis and prints
    the peak memory."""
    require_binary("redis-server")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--dashboard", "--links", "300", "--rows", "3000"],
        cwd=REPO,
        env=sesame_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    labels = ("Links page (counts, newest 1000 links)", "Activity page, all time", "sesame links")
    for label in labels:
        assert len(re.findall(rf"{re.escape(label)}\s+\d+\.\d{{3}} s", out)) == 2, out
    assert len(re.findall(r"peak RSS of the pages' process so far\s+\d+ MB", out)) == 2, out
