"""Helpers the tests share that are not fixtures: a frozen clock, system binaries, processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEY = "sesame-test-key-0123456789abcdefghijklmnopqrstu"  # 48 characters, fixed
NOW = 1_700_000_000  # 2023-11-14 22:13:20 UTC: every frozen test starts here

# The sample files every test gets, by name: a Chinese name with a space, a double quote,
# an HTML page that must never render, and one in a subfolder.
SAMPLES: dict[str, bytes] = {
    "hello.txt": b"hello, sesame\n",
    "芝麻 开门.txt": "芝麻开门 — open sesame\n".encode(),
    'say "hi".txt': b"hi\n",
    "page.html": b"<!doctype html><script>alert(1)</script>\n",
    "sub/nested.bin": bytes(range(256)) * 4,
}


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def require_binary(name: str) -> str:
    """The path of ``name``; skips the test if it is missing, but fails it when CI=true."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian: see scripts/system-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run every test")
        pytest.skip(reason)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sesame_env(**values: str) -> dict[str, str]:
    """This process's environment without its SESAME_* variables, plus ``values`` as
    SESAME_<NAME>: what a child process that must read exactly these settings gets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESAME_")}
    env.update({f"SESAME_{name.upper()}": value for name, value in values.items()})
    return env


@contextmanager
def running_gateway(
    env: Mapping[str, str], port: int, stderr_path: Path, cwd: Path
) -> Iterator[str]:
    """Run ``uvicorn --factory gateway.app:create_app`` on 127.0.0.1:``port`` until the
    block ends; yields its base URL. Its stdout and stderr go to ``stderr_path``."""
    command = [str(BIN / "uvicorn"), "--factory", "gateway.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with stderr_path.open("wb") as log:
        process = subprocess.Popen(command, env=dict(env), cwd=cwd, stdout=log, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(process, base, stderr_path)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling for start-up, not waiting for an expiry
    raise RuntimeError(f"the gateway did not answer /healthz:\n{log.read_text(errors='replace')}")
