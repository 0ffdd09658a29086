"""Load and what it costs: wrk runs read into numbers, and the peak memory of a process tree."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.cores import pin_to_client_cpus

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Load:
    """How a run of wrk went: requests and bytes per second, and how many went wrong."""

    requests_per_second: float
    bytes_per_second: float
    bad_responses: int


def wrk(url: str, seconds: int, connections: int) -> Load:
    """``wrk`` with ``connections`` keep-alive connections on ``url`` for ``seconds``."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s"]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, preexec_fn=pin_to_client_cpus
    ).stdout
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    transfer = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?)B", out)
    if rate is None or transfer is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s*(\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad += sum(int(n) for n in errors.groups()) if errors else 0
    per_second = float(transfer.group(1)) * _UNITS[transfer.group(2)]
    return Load(float(rate.group(1)), per_second, bad)


def tree_rss(pid: int) -> int:
    """Resident memory, in bytes, of process ``pid`` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(_rss(p) for p in tree)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Peak:
    """The highest value seen so far."""

    value = 0


@contextmanager
def peak_rss(pid: int, every: float = 0.05) -> Iterator[Peak]:
    """Sample the tree of ``pid`` while the block runs; the peak is read after it."""
    peak, stop = Peak(), threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak.value = max(peak.value, tree_rss(pid))
            time.sleep(every)  # a sampling period, not a wait for something

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
