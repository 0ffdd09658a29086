"""What the tests share that is not a fixture: fixed keys, times and files; a frozen clock and
services built on them; the dashboard's text; real programs on loopback. Fixtures built on
these are in conftest.py."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bench.servers import SESAME_OPTIONS
from sesame import ranges
from sesame.downloads import Admitted, Download
from sesame.models import Link, Visitor
from sesame.service import Service
from sesame.settings import Settings

if TYPE_CHECKING:  # streamlit is slow to import, and only the dashboard's tests need it
    from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])  # off a user's PATH on Debian
KEY = "sesame-test-key-0123456789abcdefghijklmnopqrstu"  # 48 characters, fixed
NOW = 1_700_000_000  # 2023-11-14 22:13:20 UTC: the core's frozen tests start here
T0 = 1_800_000_000  # 2027-01-15 08:00:00 UTC: the WeChat, API and rule tests start here

# The sample files every test gets, by name: a Chinese name with a space, a double quote,
# an HTML page that must never render, and one in a subfolder.
SAMPLES: dict[str, bytes] = {
    "hello.txt": b"hello, sesame\n",
    "芝麻 开门.txt": "芝麻开门 — open sesame\n".encode(),
    'say "hi".txt': b"hi\n",
    "page.html": b"<!doctype html><script>alert(1)</script>\n",
    "sub/nested.bin": bytes(range(256)) * 4,
}
# The dashboard: its script, its password, the zone its browser is in, and its files.
APP = REPO / "admin_ui" / "app.py"
PASSWORD = "芝麻开门 open-Sésame"  # not ASCII on purpose
ZONE = "Asia/Shanghai"  # UTC+8 all year: local times in tests are predictable
FILES = {
    "welcome.txt": b"welcome to sesame\n",
    "芝麻 开门.txt": "芝麻开门 — open sesame\n".encode(),
}
# The one file the WeChat, API and rule tests share.
FILE = "InstMsiW.exe"
BODY = b"MZ" + bytes(range(256)) * 64  # about 16 KiB that looks like nothing in particular


# -- a frozen clock, files and services ----------------------------------------------------


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_files(folder: Path, files: Mapping[str, bytes]) -> Path:
    """``folder`` holding ``files`` (relative name: bytes), made as needed; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    return folder


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with KEY, state in tmp_path/state and no .env, over tmp_path/files holding
    FILE unless ``files_dir`` is among the ``overrides``, which win."""
    values: dict[str, Any] = {
        "secret_keys": (KEY,),
        "data_dir": tmp_path / "state",
        "_env_file": None,
    }
    if "files_dir" not in overrides:
        values["files_dir"] = write_files(tmp_path / "files", {FILE: BODY})
    return Settings(**(values | overrides))


def make_service(tmp_path: Path, clock: FakeClock, **overrides: Any) -> Service:
    """A Service on ``make_settings(tmp_path, **overrides)`` running on ``clock``."""
    return Service.from_settings(make_settings(tmp_path, **overrides), clock=clock)


VISITOR = Visitor("127.0.0.1", "tests")


def take(service: Service, link: Link, size: int, settled: bool = True) -> Download:
    """Begin a download of the whole of ``link``'s file (``size`` bytes), as the gateway
    does; settled as it begins unless ``settled`` is false."""
    return service.downloads.begin(Admitted(link), ranges.whole(size), VISITOR, settled)


def path_of(service: Service, url: str) -> str:
    """A link's URL as a path for the in-process client."""
    return url.removeprefix(service.settings.public_url)


# -- the dashboard's page ------------------------------------------------------------------


def errors(at: AppTest) -> list[str]:
    """The text of every error box on the dashboard's page."""
    return texts(at.error)


def texts(elements: Iterable[Any]) -> list[str]:
    """The text of Markdown elements, without the escapes that kept it literal."""
    return [re.sub(r"\\(.)", r"\1", element.value) for element in elements]


# -- real programs -------------------------------------------------------------------------


def require_binary(name: str) -> str:
    """The path of program ``name``, looked for on PATH and then in the sbin folders that
    Debian leaves off a user's PATH; skips the test without it, but fails it when CI=true."""
    path = shutil.which(name) or shutil.which(name, path=SBIN)
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
def running_process(
    command: Sequence[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a session of its own, its stdout and stderr in ``log``, until the block
    ends; then it and every process it started are stopped."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        _signal(process, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
            process.wait()


def _signal(process: subprocess.Popen[bytes], number: int) -> None:
    with suppress(ProcessLookupError):  # the whole session is gone already
        os.killpg(process.pid, number)


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    """Return once ``ready()`` holds; raises RuntimeError, with the log, if ``process`` exits
    first or ``timeout`` seconds pass. Connection errors count as not ready yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{_read(log)}")
        with suppress(OSError, httpx.TransportError):
            if ready():
                return
        time.sleep(0.05)  # polling for start-up, not waiting for an expiry
    raise RuntimeError(f"{process.args!r} was not ready in {timeout:g} s:\n{_read(log)}")


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 right now."""
    return httpx.get(url, timeout=1).status_code == 200


def _read(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_gateway(
    env: Mapping[str, str],
    log: Path,
    port: int | None = None,
    options: Sequence[str] = SESAME_OPTIONS,
    ready: str = "/healthz",
) -> Iterator[str]:
    """``uvicorn --factory gateway.app:create_app`` with the Procfile's options (or
    ``options``) on 127.0.0.1:``port`` (a free one if not given) with exactly ``env``, from
    the moment ``ready`` answers 200 until the block ends; yields its base URL. It runs in
    the log's folder, so no .env of the developer's is read; its output goes to ``log``."""
    port = port or free_port()
    command = [str(BIN / "uvicorn"), "--factory", "gateway.app:create_app", *options]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with running_process(command, log, env=env, cwd=log.parent) as process:
        wait_until(lambda: answers(base + ready), process, log)
        yield base


@contextmanager
def gateway_of_files(home: Path, files: Mapping[str, bytes]) -> Iterator[tuple[str, Service]]:
    """A gateway process over ``files`` (written into ``home/files``, state in ``home``,
    its output in ``home/gateway.log``), and a service on the same store; yields its base
    URL and that service."""
    folder = write_files(home / "files", files)
    settings = make_settings(home, files_dir=folder)
    service = Service.from_settings(settings)
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(folder),
        data_dir=str(home / "data"),
        store_url=settings.resolved_store_url,
    )
    try:
        with running_gateway(env, home / "gateway.log") as url:
            yield url, service
    finally:
        service.store.close()


@contextmanager
def redis_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """A private redis-server on loopback ``port`` (a free one if not given), keeping nothing
    on disk, until the block ends; yields its URL. Its log is ``folder``/redis.log."""
    port = port or free_port()
    command = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    log = folder / "redis.log"
    with running_process(command, log) as process:
        wait_until(pong, process, log)
        yield f"redis://127.0.0.1:{port}/0"


def decode_qr(png: bytes) -> str:
    """The text of the QR code in ``png``, read by OpenCV's Aruco-based detector (the
    classic QRCodeDetector misses a few percent of valid codes)."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image)
    return str(text)


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` until the block ends; skips without the
    right to mount (fails under CI=true, where the tests run as root)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def listening_on(port: int) -> int:
    """The process id of the gateway started with ``--port port``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--port" in args and str(port).encode() in args:
                return int(entry.name)
    raise AssertionError(f"no process started with --port {port}")
