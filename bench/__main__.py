"""``python -m bench``: requests per second for a 4 KiB file, Sesame against the bare route.

Both apps run as real uvicorn processes on loopback with the same options, one at a time,
and take the same load: ``wrk`` when it is installed, else a small httpx client. Rounds
alternate between the two so that a slow moment of the machine does not favour either.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILE_NAME = "bench-4k.bin"
FILE_SIZE = 4096


@dataclass(frozen=True)
class Target:
    """One app to measure: how uvicorn finds it, its environment, the path to fetch."""

    label: str
    factory: str
    env: dict[str, str]
    path: str


@dataclass(frozen=True)
class Load:
    """How a run of load went."""

    requests_per_second: float
    bad_responses: int


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    duration = 2.0 if args.smoke else args.duration
    rounds = 1 if args.smoke else args.rounds
    wrk = shutil.which("wrk")
    with tempfile.TemporaryDirectory(prefix="sesame-bench-") as tmp:
        workdir = Path(tmp)
        body = os.urandom(FILE_SIZE)
        (workdir / "files").mkdir()
        (workdir / "files" / FILE_NAME).write_bytes(body)
        targets = [_bare(workdir), _sesame(workdir)]
        loader = "wrk" if wrk else "httpx (wrk not found; the client limits these figures)"
        print(f"Sesame benchmark: a {FILE_SIZE // 1024} KiB file, load by {loader}")
        print(
            f"{args.connections} connections, {duration:g} s per run, {rounds} round(s);"
            f" uvicorn {' '.join(_uvicorn_options())}"
        )
        print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version[:6]}")
        packages = ("uvicorn", "starlette", "fastapi", "itsdangerous")
        print("versions: " + ", ".join(f"{name} {version(name)}" for name in packages))
        results: dict[str, list[float]] = {t.label: [] for t in targets}
        for _ in range(rounds):
            for target in targets:
                with _serving(target, workdir) as url:
                    _check(url, body)
                    _load(url, min(1.0, duration), args, wrk)  # warm-up, not counted
                    load = _load(url, duration, args, wrk)
                if load.bad_responses:
                    print(f"{target.label}: {load.bad_responses} bad responses", file=sys.stderr)
                    return 1
                results[target.label].append(load.requests_per_second)
    _report(results)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run [10]")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each app [3]")
    parser.add_argument("--connections", type=int, default=32, help="open connections [32]")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads [1]")
    parser.add_argument("--smoke", action="store_true", help="one round of 2 s each")
    return parser.parse_args(argv)


def _bare(workdir: Path) -> Target:
    from itsdangerous import URLSafeTimedSerializer

    secret = secrets.token_urlsafe(32)
    token = URLSafeTimedSerializer(secret).dumps({"to_user": "bench"})
    env = {
        "BENCH_SECRET": secret,
        "BENCH_FILE": str(workdir / "files" / FILE_NAME),
        "BENCH_MAX_AGE": "86400",
    }
    return Target(
        "bare Starlette route (seed)", "bench.bare:create_app", env, f"/api/get_file/{token}"
    )


def _sesame(workdir: Path) -> Target:
    from sesame.service import Service
    from sesame.settings import load_settings

    env = {
        "SESAME_SECRET_KEYS": secrets.token_urlsafe(48),
        "SESAME_FILES_DIR": str(workdir / "files"),
        "SESAME_DATA_DIR": str(workdir / "data"),
        "SESAME_STORE_URL": f"sqlite:///{workdir / 'data' / 'sesame.db'}",
        "SESAME_DEFAULT_LIFETIME": "1h",
        "SESAME_MAX_LIFETIME": "7d",
    }
    settings = load_settings(_env_file=None, **{k[7:].lower(): v for k, v in env.items()})
    service = Service.from_settings(settings)
    url = service.share(FILE_NAME).url  # no download limit: every request is served
    service.store.close()
    return Target(
        "Sesame /d/{token}", "gateway.app:create_app", env, url[len(settings.public_url) :]
    )


def _uvicorn_options() -> list[str]:
    """The options both apps run with (the port is added per run)."""
    return ["--host", "127.0.0.1", "--app-dir", str(REPO)]


@contextmanager
def _serving(target: Target, workdir: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESAME_", "BENCH_"))}
    env.update(target.env)
    command = [sys.executable, "-m", "uvicorn", "--factory", target.factory]
    command += [*_uvicorn_options(), "--port", str(port)]
    log = (workdir / f"{target.factory.split('.')[0]}.log").open("ab")
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}{target.path}"
    try:
        _wait_until_up(process, url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise SystemExit(f"the server for {url} did not come up")


def _check(url: str, body: bytes) -> None:
    """Both apps must really send the file, or the comparison means nothing."""
    with urllib.request.urlopen(url, timeout=5) as response:
        if response.status != 200 or response.read() != body:
            raise SystemExit(f"{url} did not answer 200 with the file")


def _load(url: str, seconds: float, args: argparse.Namespace, wrk: str | None) -> Load:
    if wrk:
        return _wrk(wrk, url, seconds, args)
    return asyncio.run(_httpx(url, seconds, args.connections))


def _wrk(wrk: str, url: str, seconds: float, args: argparse.Namespace) -> Load:
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if rate is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s*(\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad += sum(int(n) for n in errors.groups()) if errors else 0
    return Load(float(rate.group(1)), bad)


async def _httpx(url: str, seconds: float, connections: int) -> Load:
    import httpx

    good = bad = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal good, bad
        while time.monotonic() < deadline:
            try:
                response = await client.get(url)
                good, bad = (good + 1, bad) if response.status_code == 200 else (good, bad + 1)
            except httpx.HTTPError:
                bad += 1

    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return Load(good / (time.monotonic() - started), bad)


def _report(results: dict[str, list[float]]) -> None:
    medians = {label: statistics.median(runs) for label, runs in results.items()}
    width = max(map(len, results))
    for label, runs in results.items():
        each = ", ".join(f"{r:.0f}" for r in runs)
        print(f"  {label:<{width}}  {medians[label]:8.0f} req/s   (median of: {each})")
    bare, sesame = medians.values()
    print(f"  {'ratio Sesame / bare':<{width}}  {sesame / bare:8.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
