"""The benchmark's cores: one serves, the others load. Each server is pinned to SERVER_CPU and
wrk to the rest, so a server's figure is what one core gives (on a machine of one CPU, both
share it)."""

from __future__ import annotations

import os

SERVER_CPU = 0


def pin_to_server_cpu() -> None:
    """Run this process (a server about to start) on the server's core only."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {SERVER_CPU})


def pin_to_client_cpus() -> None:
    """Run this process (the load about to start) on every core but the server's."""
    if hasattr(os, "sched_setaffinity"):
        cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, (cores - {SERVER_CPU}) or cores)
