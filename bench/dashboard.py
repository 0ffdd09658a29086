"""``python -m bench --dashboard``: the data behind the Links and Activity pages and
``sesame links``, timed on a year of use (100,000 links, 1,000,000 log rows by default), in
SQLite and in Redis, with this process's peak memory.

Each figure is what the page asks of sesame.service on a rerun, tables included; the
widgets themselves are not drawn. The data is written straight into the store's own layout
(it would take hours through the gateway).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import resource
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import redis
from click.testing import CliRunner

from admin_ui import tables
from bench.servers import redis_server
from sesame.activity import LogFilter
from sesame.cli import cli
from sesame.models import Outcome
from sesame.service import Service
from sesame.settings import Settings, load_settings
from sesame.store.sqlite import SQLiteStore

KEY = "bench-dashboard-key-0123456789abcdefghijklmnop"
NOW = 1_790_000_000  # the end of the year of use
YEAR = 365 * 86400
FILES = [f"file-{n:02d}.zip" for n in range(50)]
AGENTS = ["curl/8.1", "Wget/1.21", "Mozilla/5.0 (iPhone) MicroMessenger/8.0", "TelegramBot"]
OUTCOMES = [(Outcome.COMPLETED, 70), (Outcome.ABORTED, 10), (Outcome.PREVIEW, 10)]
OUTCOMES += [(Outcome.REFUSED, 5), (Outcome.HEAD, 3), (Outcome.LANDING, 2)]
TARGET_S, TARGET_MB = 1.0, 300


def run(links: int, rows: int, stores: list[str]) -> None:
    print(f"Dashboard data, {links:,} links and {rows:,} log rows; targets: each page's data")
    print(f"under {TARGET_S:.0f} s, the process under {TARGET_MB} MB (peak RSS).\n")
    for name in stores:
        with tempfile.TemporaryDirectory(prefix="sesame-bench-dash-") as tmp:
            with _store_url(name, Path(tmp)) as url:
                started = time.perf_counter()
                # Written by a child process, so that the peak RSS below is the pages' own.
                child = multiprocessing.get_context("fork").Process(
                    target=_fill, args=(url, links, rows)
                )
                child.start()
                child.join()
                if child.exitcode != 0:
                    raise SystemExit("writing the data failed")
                service = _service(Path(tmp), url)
                print(f"{name}: data written in {time.perf_counter() - started:.0f} s")
                # What the gateway's housekeeping does once after the upgrade, then a
                # minute's rows at a time: the sums the long periods read.
                print(f"  the log's sums rolled up in {_timed(service.rollup.sweep):.1f} s")
                _print(_pages(service))
                print(f"  peak RSS of the pages' process so far{_peak_mb():15.0f} MB")
                _print(_commands(service))  # each its own process in real use
                print(f"  peak RSS with the commands too{_peak_mb():22.0f} MB")
                print("  every link, written out (an export: no target):")
                _print(_exports(service), target=False)
                print()
                service.store.close()


def _print(figures: Iterator[tuple[str, float]], target: bool = True) -> None:
    for label, seconds in figures:
        mark = "" if seconds < TARGET_S or not target else "  over the target"
        print(f"  {label:<44}{seconds:8.3f} s{mark}")


def _pages(service: Service) -> Iterator[tuple[str, float]]:
    month = LogFilter(since=NOW - 30 * 86400)
    yield "Links page (counts, newest 1000 links)", _timed(lambda: _links_page(service))
    yield "Activity page, last 30 days", _timed(lambda: _activity_page(service, month))
    yield "Activity page, all time", _timed(lambda: _activity_page(service, LogFilter()))
    searched = LogFilter(since=NOW - 30 * 86400, text="wget", outcomes=["completed"])
    yield (
        "Activity page, 30 days, search and outcome",
        _timed(lambda: _activity_page(service, searched)),
    )
    one_file = LogFilter(files=[FILES[7]])
    yield "Activity page, one file, all time", _timed(lambda: _activity_page(service, one_file))


def _commands(service: Service) -> Iterator[tuple[str, float]]:
    for args in (["links"], ["links", "--all"], ["links", "--all", "--json"]):
        yield f"sesame {' '.join(args)}", _timed(lambda args=args: _command(service, args))


def _exports(service: Service) -> Iterator[tuple[str, float]]:
    """Every link written out: no page, so no target; the time grows with the links (the
    JSON mints each one's URL). Each in a child process, as in real use, so that what it
    holds stays out of the pages' peak RSS."""
    for args in (["links", "--all", "--limit", "0"], ["links", "--all", "--limit", "0", "--json"]):
        child = multiprocessing.get_context("fork").Process(
            target=_export, args=(service.settings, args)
        )
        started = time.perf_counter()
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"sesame {' '.join(args)} failed")
        yield f"sesame {' '.join(args)}", time.perf_counter() - started


def _export(settings: Settings, args: list[str]) -> None:
    """``sesame ARGS`` in a child process, on a store of its own opening."""
    service = Service.from_settings(settings, clock=lambda: NOW)
    _command(service, args)
    service.store.close()


def _command(service: Service, args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, obj={"factory": lambda: service})
    if result.exit_code != 0:
        raise SystemExit(f"sesame {' '.join(args)} failed: {result.output}")


def _links_page(service: Service) -> None:
    now, tz = service.clock(), UTC
    service.link_counts()
    service.link_files()
    shown = service.links_page(limit=1001)[:1000]
    counted = service.outcome_counts([item.link.id for item in shown])
    outcomes = {link_id: Counter(counts) for link_id, counts in counted.items()}
    tables.links(shown, now, tz, outcomes)  # type: ignore[arg-type]


def _activity_page(service: Service, query: LogFilter) -> None:
    service.log_page(LogFilter(), 1)
    service.link_files()
    service.log_totals(query)
    series = service.log_series(query)
    tables.series_per_day(series, "downloads")
    tables.series_per_file(series, "MiB")
    tables.log_rows(service.log_page(query, 1001), UTC)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _service(tmp: Path, url: str) -> Service:
    files = tmp / "files"
    files.mkdir()
    settings = load_settings(secret_keys=KEY, files_dir=files, data_dir=tmp / "data", store_url=url)
    return Service.from_settings(settings, clock=lambda: NOW)


@contextmanager
def _store_url(name: str, tmp: Path) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{tmp / 'sesame.db'}"
        return
    with redis_server(tmp) as url:
        yield url


def _made(links: int, rows: int) -> Iterator[tuple[str, tuple[object, ...]]]:
    """("link", row) and ("event", row) tuples of a year of use, links first."""
    rng = random.Random(2026)
    outcomes, weights = zip(*OUTCOMES, strict=True)
    created = sorted(NOW - rng.randrange(YEAR) for _ in range(links))
    lifetimes = [rng.choice([600, 3600, 86400, 7 * 86400]) for _ in range(links)]
    for n, (at, lifetime) in enumerate(zip(created, lifetimes, strict=True)):
        recipient = rng.choice([None, f"friend {n % 500}", f"同学 {n % 300}"])
        yield "link", (f"L{n:010d}", FILES[n % len(FILES)], at, at + lifetime, 3, recipient)
    events = []
    for _ in range(rows):
        n = rng.randrange(links)
        events.append((created[n] + rng.random() * lifetimes[n], n))
    events.sort()
    for at, n in events:
        outcome = rng.choices(outcomes, weights)[0]
        counted = outcome is Outcome.COMPLETED and rng.random() < 0.8
        ip = f"10.{n % 50}.{rng.randrange(32)}.{rng.randrange(32)}"  # 51,200 addresses
        sent = rng.randrange(10_000_000) if outcome is not Outcome.REFUSED else 0
        row = (f"L{n:010d}", at, ip, rng.choice(AGENTS), 200, sent, str(outcome), counted)
        yield "event", row


def _fill(url: str, links: int, rows: int) -> None:
    if url.startswith("sqlite"):
        _fill_sqlite(Path(url.removeprefix("sqlite:///")), links, rows)
    else:
        _fill_redis(url, links, rows)


def _fill_sqlite(path: Path, links: int, rows: int) -> None:
    SQLiteStore(path).close()  # today's schema
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for kind, row in _made(links, rows):
        if kind == "link":
            db.execute(
                "INSERT INTO links (id, file, created_at, expires_at, max_downloads, recipient)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        else:
            db.execute(
                "INSERT INTO downloads (link_id, at, client_ip, user_agent, status, bytes_sent,"
                " outcome, counted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
    db.execute("COMMIT")
    db.close()


def _fill_redis(url: str, links: int, rows: int) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    names = ("link_id", "at", "client_ip", "user_agent", "status", "bytes_sent", "outcome")
    for number, (kind, row) in enumerate(_made(links, rows)):
        if kind == "link":
            link_id, file, created, expires, limit, recipient = row
            record = {"id": link_id, "file": file, "created_at": created, "expires_at": expires}
            record |= {"max_downloads": limit, "downloads": 0, "bytes_served": 0, "landing": 0}
            if recipient:
                record["recipient"] = recipient
            pipe.hset(f"sesame:link:{link_id}", mapping=record)  # type: ignore[arg-type]
            pipe.zadd("sesame:links", {str(link_id): int(created)})  # type: ignore[call-overload]
        else:
            data = json.dumps(dict(zip((*names, "counted"), row, strict=True)))
            # Stream ids in the log's own time, as a live gateway would have written them.
            entry = f"{int(float(row[1]) * 1000)}-{number}"  # type: ignore[arg-type]
            pipe.xadd("sesame:events", {"e": data}, id=entry)
            pipe.lpush(f"sesame:events:{row[0]}", data)
        if number % 5000 == 0:
            pipe.execute()
    pipe.execute()
    client.close()
