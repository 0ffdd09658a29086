"""Consistent copies of a store while the gateway runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sesame.errors import BackupError


def backup_sqlite(source: sqlite3.Connection, target: Path) -> None:
    """Copy the database behind ``source`` into a new file ``target`` with SQLite's online
    backup API: one read transaction, so the copy is the database at one moment, and
    gateways go on writing meanwhile (WAL). Raises BackupError if ``target`` exists."""
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} exists already; give the backup a new name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
    finally:
        copy.close()
    partial.rename(target)


REDIS_ADVICE = (
    "A Redis store is backed up by Redis itself: run `redis-cli -u URL BGSAVE`, wait until "
    "`redis-cli -u URL LASTSAVE` changes, then copy dump.rdb from the folder that "
    "`redis-cli -u URL CONFIG GET dir` names (or keep Redis's append-only file)."
)
