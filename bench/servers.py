"""The processes the benchmark measures: Sesame's gateway (direct or offload) and the seed's
bare route under uvicorn, started on free loopback ports in a temporary folder."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.cores import pin_to_client_cpus, pin_to_server_cpu

REPO = Path(__file__).resolve().parent.parent


def procfile_options() -> list[str]:
    """The event loop, HTTP protocol and access log options of the Procfile's ``web``."""
    web = next(
        line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    words = web.split()
    options: list[str] = []
    for i, word in enumerate(words):
        if word in ("--loop", "--http"):
            options += words[i : i + 2]
        elif word == "--no-access-log":
            options.append(word)
    return options


# The seed's gateway runs with uvicorn's defaults (its access log on), and at its best: the
# fastest event loop and HTTP parser, no access log. Sesame with the options of the Procfile;
# the ceiling (a bare ASGI app) as the seed at its best.
NAIVE_OPTIONS: list[str] = []
BEST_OPTIONS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
SESAME_OPTIONS = procfile_options()


@dataclass(frozen=True)
class Server:
    """A running uvicorn: its base URL and its process id (the root of its process tree)."""

    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sesame_env(workdir: Path, public_url: str, offload: str, store_url: str = "") -> dict[str, str]:
    """The environment of a Sesame gateway over ``workdir/files``, state in ``workdir``
    (its store in SQLite there, unless ``store_url`` says another)."""
    return {
        "SESAME_SECRET_KEYS": "bench-" + "k" * 42,
        "SESAME_FILES_DIR": str(workdir / "files"),
        "SESAME_DATA_DIR": str(workdir / "data"),
        "SESAME_STORE_URL": store_url or f"sqlite:///{workdir / 'data' / 'sesame.db'}",
        "SESAME_PUBLIC_URL": public_url,
        "SESAME_DEFAULT_LIFETIME": "1d",
        "SESAME_MAX_LIFETIME": "7d",
        "SESAME_OFFLOAD": offload,
    }


def share(env: dict[str, str], file: str, max_downloads: int | None = None) -> str:
    """The path (``/d/TOKEN``) of a new link to ``file`` in the gateway of ``env``."""
    from sesame.service import Service
    from sesame.settings import load_settings

    values = {k[len("SESAME_") :].lower(): v for k, v in env.items()}
    settings = load_settings(_env_file=None, **values)
    service = Service.from_settings(settings)
    try:
        url = service.share(file, max_downloads=max_downloads).url
    finally:
        service.store.close()
    return url[len(settings.public_url) :]


def bare_env(path: Path) -> tuple[dict[str, str], str]:
    """The environment of the seed's bare route serving ``path``, and a token path for it."""
    from itsdangerous import URLSafeTimedSerializer

    secret = secrets.token_urlsafe(32)
    token = URLSafeTimedSerializer(secret).dumps({"to_user": "bench"})
    env = {"BENCH_SECRET": secret, "BENCH_FILE": str(path), "BENCH_MAX_AGE": "86400"}
    return env, f"/api/get_file/{token}"


@contextmanager
def uvicorn(
    factory: str, env: dict[str, str], options: list[str], workdir: Path, port: int
) -> Iterator[Server]:
    """``uvicorn --factory FACTORY`` with ``options`` on 127.0.0.1:``port``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SESAME_", "BENCH_"))}
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--app-dir", str(REPO)]
    command += ["--host", "127.0.0.1", "--port", str(port), *options]
    log = (workdir / f"uvicorn-{port}.log").open("ab")
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env={**clean, **env},
        stdout=log,
        stderr=log,
        preexec_fn=pin_to_server_cpu,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, url)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if with 404
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # polling for start-up
    raise SystemExit(f"the server at {url} did not come up")


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server on a free loopback port, keeping nothing on disk, on the
    load's CPUs (not the server's: it stands for a store on another machine); its URL."""
    import redis

    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("the Redis figures need redis-server (Debian: scripts/system-deps)")
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=pin_to_client_cpus)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)  # the server starting, not a test waiting on time
        yield url
    finally:
        process.terminate()
        process.wait()


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET: the benchmark checks every server really sends the file."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()
