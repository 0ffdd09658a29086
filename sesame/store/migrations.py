"""Schema versions of the stores, and the steps from each version to the next.

SQLite keeps its version in ``PRAGMA user_version``; Redis in the key ``sesame:schema``. A
store brings its database up to date when it opens, one step per transaction, and refuses a
database newer than this code with ``SchemaTooNew``.

To change the SQLite schema: change ``SCHEMA`` in ``sqlite.py`` (what a new database gets)
and append one step to ``SQLITE_STEPS`` that turns the previous version into it (a string
of SQL statements, or a function of the connection). ``tests/store/test_migrations.py``
checks that a database migrated from every earlier schema ends up with the same tables,
columns and indexes as a new one. Redis: append to ``REDIS_STEPS`` in the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from sesame.errors import SchemaTooNew
from sesame.store.redis_status import INDEX_LINKS

SQLiteStep = str | Callable[[sqlite3.Connection], None]

# Tables added after the first release, as they were at version 1.
_V1_TABLES = """
CREATE TABLE IF NOT EXISTS rules (
    key TEXT PRIMARY KEY,
    keyword TEXT NOT NULL,
    file TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    max_downloads INTEGER,
    cooldown INTEGER NOT NULL,
    template TEXT,
    landing INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS issues (
    scope TEXT NOT NULL,
    recipient TEXT NOT NULL,
    link_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    PRIMARY KEY (scope, recipient)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
);
CREATE TABLE IF NOT EXISTS slots (
    id TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS egress (
    day INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS downloads_of_link ON downloads (link_id);
DROP INDEX IF EXISTS downloads_by_link;
DROP INDEX IF EXISTS downloads_by_time;
"""

# Columns added after the first release, in the order they were added.
_V1_COLUMNS = [
    ("links", "bytes_served", "INTEGER NOT NULL DEFAULT 0"),
    ("links", "started_at", "INTEGER"),
    ("links", "landing", "INTEGER NOT NULL DEFAULT 0"),
    ("links", "rate", "INTEGER"),
    ("downloads", "counted", "INTEGER NOT NULL DEFAULT 0"),
]


def _adopt_unversioned(db: sqlite3.Connection) -> None:
    """Version 1: any schema shipped before versions existed (from the first release on)
    gets what it lacks. Log rows written before downloads were marked as counted are
    marked so if they were a completed full download (status 200), which counted then."""
    for table, column, kind in _V1_COLUMNS:
        if column not in _columns(db, table):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            if column == "counted":
                db.execute(
                    "UPDATE downloads SET counted = 1 WHERE outcome = 'completed' AND status = 200"
                )
    for statement in statements(_V1_TABLES):
        db.execute(statement)


def _rollups(db: sqlite3.Connection) -> None:
    from sesame.store.sqlite_rollup import SCHEMA  # it imports sesame.activity, not this

    for statement in statements(SCHEMA):
        db.execute(statement)


SQLITE_STEPS: list[SQLiteStep] = [
    _adopt_unversioned,  # 1
    # 2: the Links page counts outcomes per link from the index alone; the Activity page
    # reads a period by time. Still one trip per download, now two indexes to keep.
    """CREATE INDEX IF NOT EXISTS downloads_by_link ON downloads (link_id, outcome);
    DROP INDEX IF EXISTS downloads_of_link;
    CREATE INDEX IF NOT EXISTS downloads_by_time ON downloads (at);""",
    # 3: a download's lease keeps what settling it needs (a dead gateway's downloads are
    # given back), and the pieces of one client's download share a session. Downloads in
    # flight during the upgrade hold no place afterwards.
    """DROP TABLE IF EXISTS slots;
    CREATE TABLE IF NOT EXISTS leases (
        id TEXT PRIMARY KEY,
        until INTEGER NOT NULL,
        link_id TEXT NOT NULL,
        counted INTEGER NOT NULL,
        reserved INTEGER NOT NULL,
        day INTEGER NOT NULL,
        sent INTEGER NOT NULL DEFAULT 0,
        row TEXT NOT NULL,
        session TEXT NOT NULL DEFAULT '',
        delivered INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS leases_by_until ON leases (until);
    CREATE INDEX IF NOT EXISTS leases_by_session ON leases (session);
    CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, until INTEGER NOT NULL);""",
    # 4: sums of the log per day, file and outcome, and each day's client addresses, for
    # the Activity page over long periods (sqlite_rollup.py). They start empty and
    # roll_up fills them off the download path; triggers keep them with rows that change.
    _rollups,
]
SQLITE_VERSION = len(SQLITE_STEPS)


def migrate_sqlite(db: sqlite3.Connection, schema: str, where: str) -> None:
    """Bring the database on ``db`` (an autocommit connection) to SQLITE_VERSION: a new
    one gets ``schema``, an older one each missing step, each in its own transaction.
    Raises SchemaTooNew if the database is newer than this code."""
    while _sqlite_step(db, schema, where):
        pass


def _sqlite_step(db: sqlite3.Connection, schema: str, where: str) -> bool:
    """Take one step, if one is due; whether one was taken. A database that needs none is
    only read: it opens while another process holds its write lock, to be read meanwhile."""
    if _sqlite_version(db, where) == SQLITE_VERSION:
        return False
    db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
    try:
        version = _sqlite_version(db, where)
        if version == SQLITE_VERSION:
            db.execute("COMMIT")
            return False
        if version == 0 and "links" not in _tables(db):
            _run(db, schema)
            version = SQLITE_VERSION
        else:
            _run(db, SQLITE_STEPS[version])
            version += 1
        db.execute(f"PRAGMA user_version = {version:d}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return True


def _sqlite_version(db: sqlite3.Connection, where: str) -> int:
    """The database's schema version. Raises SchemaTooNew if it is newer than this code."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SQLITE_VERSION:
        raise SchemaTooNew(where, version, SQLITE_VERSION)
    return int(version)


def _run(db: sqlite3.Connection, step: SQLiteStep) -> None:
    if isinstance(step, str):
        for statement in statements(step):
            db.execute(statement)
    else:
        step(db)


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one by one (``executescript`` would commit)."""
    found: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    return found


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


# -- Redis --------------------------------------------------------------------------------

SCHEMA_KEY = "sesame:schema"

# Version 1 is the layout since the Redis store began: links as hashes sesame:link:ID (kept
# until retention after expiry) indexed by the sorted set sesame:links; the log as the stream
# sesame:events and a list per link sesame:events:ID; sesame:rules, sesame:issue:*,
# sesame:apikey:*, sesame:apikeys, sesame:apikey-digest:*, sesame:slots, sesame:egress.
# Version 2 adds the log's sums (sesame/store/redis_rollup.py); version 3 the links by status
# and by file (sesame/store/redis_status.py).
RedisStep = Callable[[Any], None]


def _redis_sums(client: Any) -> None:
    """2: the log's sums (sesame/store/redis_rollup.py), from nothing: roll_up fills them.
    From here on an entry leaves the stream only by a script that takes it out of the sums
    too (code before this version trimmed it by XADD's MINID), which is why it is a step."""
    client.hsetnx("sesame:rollups", "0", "0-0")


def _redis_index(client: Any) -> None:
    """3: the links by status and by file (sesame/store/redis_status.py), from the records,
    500 a script."""
    index, start = client.register_script(INDEX_LINKS), 0
    while ids := client.zrange("sesame:links", start, start + 499):
        index(args=ids)
        start += len(ids)


REDIS_STEPS: list[RedisStep] = [_redis_sums, _redis_index]
REDIS_VERSION = 1 + len(REDIS_STEPS)


def migrate_redis(client: Any, where: str) -> None:
    """Bring the Redis database to REDIS_VERSION (one with data but no version key is
    version 1, an empty one the latest); raises SchemaTooNew if it is newer than this code."""
    if client.get(SCHEMA_KEY) is None:
        used = client.exists("sesame:links", "sesame:events", "sesame:rules", "sesame:apikeys")
        client.set(SCHEMA_KEY, 1 if used else REDIS_VERSION, nx=True)
    version = int(client.get(SCHEMA_KEY))
    if version > REDIS_VERSION:
        raise SchemaTooNew(where, version, REDIS_VERSION)
    while version < REDIS_VERSION:
        REDIS_STEPS[version - 1](client)
        version += 1
        client.set(SCHEMA_KEY, version)
