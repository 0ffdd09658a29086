"""Where link records, counters and download events live."""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sesame.errors import ConfigError
from sesame.store.base import Store
from sesame.store.guard import guarded
from sesame.store.sqlite import SQLiteStore

if TYPE_CHECKING:  # imported only for a Redis store: it is not needed otherwise
    from sesame.store.redis import RedisStore

__all__ = ["Store", "open_store"]

# A locked, read-only, full or damaged file is the store failing; a broken constraint or a
# misused API is a mistake in Sesame, and must not hide behind a 503.
_SQLITE_FAILURES = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)
_SQLITE_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.NotSupportedError)
GuardedSQLiteStore = guarded(SQLiteStore, _SQLITE_FAILURES, _SQLITE_BUGS)


def open_store(url: str, retention: int, timeout: float = 2.0) -> Store:
    """The store that ``url`` names: ``sqlite:///relative/or//absolute/path`` or
    ``redis://host:port/db``. ``retention``: how long Redis keeps records after expiry;
    ``timeout``: how long a call may wait for Redis or for an SQLite write lock.

    Every method of the store raises StoreUnavailable when the store fails."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        store: Store = _guarded_redis()(_with_timeouts(url, timeout), retention)
        return store
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise ConfigError(
                "SESAME_STORE_URL: an sqlite URL needs a path, like sqlite:///data.db"
            )
        return GuardedSQLiteStore(Path(path), timeout)
    raise ConfigError(
        f"SESAME_STORE_URL: unsupported store {scheme!r}; use sqlite:///PATH or redis://HOST:PORT/DB"
    )


@cache
def _guarded_redis() -> type[RedisStore]:
    import redis

    from sesame.store.redis import RedisStore

    return guarded(RedisStore, (redis.RedisError,))


def _with_timeouts(url: str, timeout: float) -> str:
    """``url`` asking redis-py to give up on a connection or an answer after ``timeout``
    seconds (unless the URL says otherwise), so that a stopped or hung Redis fails fast."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("socket_timeout", str(timeout))
    query.setdefault("socket_connect_timeout", str(timeout))
    return urlunsplit(parts._replace(query=urlencode(query)))
