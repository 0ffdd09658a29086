"""``python -m bench``: Sesame measured against nginx, side by side in one run.

A 4 KiB file with 32 keep-alive connections (requests/s): the seed's naive gateway (with
uvicorn's defaults, and at its best), Sesame's full download path through an unlimited link
and through a link with a large limit, a bare ASGI app sending the bytes from memory (the
ceiling of any app under uvicorn), nginx serving the file statically, and Sesame's two
links again on a private redis-server (on wrk's CPUs); then Sesame's ratios against issue
13's targets (on SQLite, the default store). A large file (1 GiB) with 1 and with 8 clients
(MB/s): Sesame sending the body itself, Sesame in offload mode behind nginx
(deploy/nginx.conf), and nginx alone; and the gateway's peak memory (RSS of all its
processes) meanwhile. Load by ``wrk`` on loopback, every server on one core and wrk on the
others; every figure is the median of the rounds, with their min-max and the ratio to
nginx. See bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from bench.cores import SERVER_CPU
from bench.load import Load, peak_rss, wrk
from bench.nginx import offload_server, running_nginx, static_server
from bench.servers import (
    BEST_OPTIONS,
    NAIVE_OPTIONS,
    SESAME_OPTIONS,
    Server,
    bare_env,
    fetch,
    free_port,
    redis_server,
    sesame_env,
    share,
    uvicorn,
)

SMALL, SMALL_SIZE = "small.bin", 4096
LARGE = "large.bin"
NGINX = "nginx static"
SMALL_GROUP = "4 KiB file, 32 connections: requests/s"
NAIVE = "naive gateway (the seed's route), uvicorn's defaults"
NAIVE_BEST = "naive gateway at its best (uvloop, httptools, no access log)"
UNLIMITED = "Sesame, unlimited link"
LIMITED = "Sesame, link with a large limit"
REDIS_UNLIMITED = "Sesame on Redis, unlimited link"
REDIS_LIMITED = "Sesame on Redis, link with a large limit"
CEILING = "bare ASGI app, the body from memory (the ceiling)"
# Issue 13's targets: a figure against a yardstick of the same group, and the least ratio.
TARGETS = [
    ("limited link / the ceiling", LIMITED, CEILING, 0.25),
    ("limited link / the naive gateway at its best", LIMITED, NAIVE_BEST, 4.0),
    ("unlimited link / the ceiling", UNLIMITED, CEILING, 0.35),
]


@dataclass(frozen=True)
class Case:
    """One figure: a URL under a load, in a group whose nginx row is its yardstick."""

    group: str
    label: str
    url: str
    connections: int
    measure: Callable[[Load], float]
    pid: int | None = None  # a gateway whose memory is sampled during the run


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.dashboard:
        from bench import dashboard

        dashboard.run(args.links, args.rows, args.stores.split(","))
        return 0
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not shutil.which("wrk") or not os.path.exists(nginx):
        raise SystemExit("the benchmark needs wrk and nginx (Debian: scripts/system-deps)")
    duration = 1 if args.smoke else args.duration
    rounds = 1 if args.smoke else args.rounds
    large_size = (64 if args.smoke else args.large_mib) * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="sesame-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        _write_files(workdir, large_size)
        cases = _start(stack, workdir, nginx, args.workers, large_size)
        _print_header(args, duration, rounds, large_size)
        figures: dict[Case, list[float]] = {case: [] for case in cases}
        memory: dict[Case, list[int]] = {case: [] for case in cases if case.pid}
        for number in range(rounds):
            # Every other round runs the cases backwards, so no figure always comes first or
            # right after the same neighbour (a run's noise is often shared with the next).
            for case in cases if number % 2 == 0 else cases[::-1]:
                if case.group.startswith("4 KiB"):
                    wrk(case.url, 1, case.connections)  # warm-up, not counted
                with peak_rss(case.pid or os.getpid()) as peak:
                    load = wrk(case.url, duration, case.connections)
                if load.bad_responses:
                    raise SystemExit(f"{case.label}: {load.bad_responses} bad responses")
                figures[case].append(case.measure(load))
                if case.pid:
                    memory[case].append(peak.value)
    _report(figures, memory)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run [5]")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each figure [3]")
    parser.add_argument("--workers", type=int, default=1, help="Sesame's uvicorn workers [1]")
    parser.add_argument("--large-mib", type=int, default=1024, help="large file, MiB [1024]")
    parser.add_argument("--smoke", action="store_true", help="one short round, 64 MiB file")
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="instead: time the Links and Activity pages' data and `sesame links`",
    )
    parser.add_argument("--links", type=int, default=100_000, help="--dashboard links [100000]")
    parser.add_argument("--rows", type=int, default=1_000_000, help="--dashboard log rows [1e6]")
    parser.add_argument("--stores", default="sqlite,redis", help="--dashboard stores [both]")
    return parser.parse_args(argv)


def _write_files(workdir: Path, large_size: int) -> None:
    files = workdir / "files"
    files.mkdir()
    (files / SMALL).write_bytes(os.urandom(SMALL_SIZE))
    block = os.urandom(16 * 1024 * 1024)
    with (files / LARGE).open("wb") as out:
        for offset in range(0, large_size, len(block)):
            out.write(block[: large_size - offset])


def _start(
    stack: ExitStack, workdir: Path, nginx: str, workers: int, large_size: int
) -> list[Case]:
    """Start every server, check each sends the right bytes, and list what to measure."""
    files = workdir / "files"
    port = free_port()
    static = stack.enter_context(
        running_nginx(nginx, workdir / "nginx-static", static_server(port, files), port)
    )
    options = [*SESAME_OPTIONS, "--workers", str(workers)]
    direct = _gateway(stack, workdir, "off", options)
    store = stack.enter_context(redis_server(workdir))
    on_redis = _gateway(stack, workdir, "off", options, store_url=store)
    front_port = free_port()
    offload = _gateway(stack, workdir, "nginx", options, f"http://127.0.0.1:{front_port}")
    server = offload_server(front_port, int(offload.url.rsplit(":", 1)[1]), files)
    front = stack.enter_context(running_nginx(nginx, workdir / "nginx-front", server, front_port))
    env, token_path = bare_env(files / SMALL)
    naive = stack.enter_context(
        uvicorn("bench.bare:create_app", env, NAIVE_OPTIONS, workdir, free_port())
    )
    best = stack.enter_context(
        uvicorn("bench.bare:create_app", env, BEST_OPTIONS, workdir, free_port())
    )
    ceiling = stack.enter_context(
        uvicorn("bench.ceiling:create_app", env, BEST_OPTIONS, workdir, free_port())
    )
    gateway_env = sesame_env(workdir, direct.url, "off")
    unlimited, limited = share(gateway_env, SMALL), share(gateway_env, SMALL, 10**9)
    large = share(gateway_env, LARGE)
    redis_env = sesame_env(workdir, on_redis.url, "off", store)
    redis_unlimited, redis_limited = share(redis_env, SMALL), share(redis_env, SMALL, 10**9)
    urls = {
        "naive": naive.url + token_path,
        "best": best.url + token_path,
        "ceiling": ceiling.url + "/",
        "unlimited": direct.url + unlimited,
        "limited": direct.url + limited,
        "redis_unlimited": on_redis.url + redis_unlimited,
        "redis_limited": on_redis.url + redis_limited,
        "static": f"{static}/{SMALL}",
        "direct": direct.url + large,
        "front": front + large,
        "static_large": f"{static}/{LARGE}",
    }
    small = ("naive", "best", "ceiling", "unlimited", "limited", "redis_unlimited", "redis_limited")
    _check(workdir, *(urls[k] for k in small))
    _check(workdir, urls["static"])
    _check_large(workdir, urls["direct"], urls["front"], urls["static_large"])
    return _cases(urls, direct, offload)


def _gateway(
    stack: ExitStack,
    workdir: Path,
    offload: str,
    options: list[str],
    public: str = "",
    store_url: str = "",
) -> Server:
    port = free_port()
    env = sesame_env(workdir, public or f"http://127.0.0.1:{port}", offload, store_url)
    return stack.enter_context(uvicorn("gateway.app:create_app", env, options, workdir, port))


def _check(workdir: Path, *urls: str) -> None:
    """Every server must really send the file, or the comparison means nothing."""
    body = (workdir / "files" / SMALL).read_bytes()
    for url in urls:
        if fetch(url) != (200, body):
            raise SystemExit(f"{url} did not answer 200 with the file")


def _check_large(workdir: Path, *urls: str) -> None:
    with (workdir / "files" / LARGE).open("rb") as large:
        head = large.read(1024)
    for url in urls:
        if fetch(url, {"Range": "bytes=0-1023"})[1] != head:
            raise SystemExit(f"{url} did not send the large file")


def _cases(urls: dict[str, str], direct: Server, offload: Server) -> list[Case]:
    def rps(load: Load) -> float:
        return load.requests_per_second

    def mbps(load: Load) -> float:
        return load.bytes_per_second / 1e6

    cases = [
        Case(SMALL_GROUP, NAIVE, urls["naive"], 32, rps),
        Case(SMALL_GROUP, NAIVE_BEST, urls["best"], 32, rps),
        Case(SMALL_GROUP, UNLIMITED, urls["unlimited"], 32, rps),
        Case(SMALL_GROUP, LIMITED, urls["limited"], 32, rps),
        Case(SMALL_GROUP, REDIS_UNLIMITED, urls["redis_unlimited"], 32, rps),
        Case(SMALL_GROUP, REDIS_LIMITED, urls["redis_limited"], 32, rps),
        Case(SMALL_GROUP, CEILING, urls["ceiling"], 32, rps),
        Case(SMALL_GROUP, NGINX, urls["static"], 32, rps),
    ]
    for clients in (1, 8):
        group = f"large file, {clients} client{'s' if clients > 1 else ''}: MB/s"
        cases += [
            Case(group, "Sesame direct", urls["direct"], clients, mbps, direct.pid),
            Case(group, "Sesame offload, behind nginx", urls["front"], clients, mbps, offload.pid),
            Case(group, NGINX, urls["static_large"], clients, mbps),
        ]
    return cases


def _print_header(args: argparse.Namespace, duration: int, rounds: int, large: int) -> None:
    print(f"Sesame against nginx: {rounds} round(s) of {duration:g} s per figure, load by wrk")
    print(f"large file: {large // 1024**2} MiB; Sesame: uvicorn {' '.join(SESAME_OPTIONS)}", end="")
    print(f" --workers {args.workers}; every server on CPU {SERVER_CPU}, wrk on the others")
    print("Sesame on Redis: a private redis-server on wrk's CPUs, as a store on another host")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version[:6]}")
    packages = ("uvicorn", "uvloop", "httptools", "starlette", "fastapi")
    print("versions: " + ", ".join(f"{name} {version(name)}" for name in packages))


def _report(figures: dict[Case, list[float]], memory: dict[Case, list[int]]) -> None:
    yardsticks = {c.group: statistics.median(v) for c, v in figures.items() if c.label == NGINX}
    width = max(len(case.label) for case in figures) + 14  # room for the memory labels
    print(f"\n{'':<{width}}{'median':>10}  {'min-max':>17}  {'x nginx':>7}")
    group = ""
    for case, values in figures.items():
        if case.group != group:
            group = case.group
            print(group)
        median = statistics.median(values)
        spread = f"{min(values):.0f}-{max(values):.0f}"
        ratio = median / yardsticks[case.group]
        print(f"  {case.label:<{width - 2}}{median:>10.0f}  {spread:>17}  {ratio:>7.2f}")
    medians = {
        case.label: statistics.median(v) for case, v in figures.items() if case.group == SMALL_GROUP
    }
    print("4 KiB ratios against their targets")
    for name, label, yardstick, target in TARGETS:
        ratio = medians[label] / medians[yardstick]
        verdict = "met" if ratio >= target else "not met"
        print(f"  {name}: {ratio:.2f} (target >= {target:g}, {verdict})")
    print("gateway peak RSS, all its processes: MB")
    for case, peaks in memory.items():
        label = f"{case.label}, {case.group.split(':')[0].split(', ')[1]}"
        values = [p / 1e6 for p in peaks]
        spread = f"{min(values):.0f}-{max(values):.0f}"
        print(f"  {label:<{width - 2}}{statistics.median(values):>10.0f}  {spread:>17}")


if __name__ == "__main__":
    raise SystemExit(main())
