"""Where link records, counters and download events live."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sesame.errors import ConfigError
from sesame.store.base import Store
from sesame.store.sqlite import SQLiteStore

__all__ = ["Store", "open_store"]


def open_store(url: str, retention: int) -> Store:
    """The store that ``url`` names: ``sqlite:///relative/or//absolute/path`` or
    ``redis://host:port/db``. ``retention``: how long Redis keeps records after expiry."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        from sesame.store.redis import RedisStore

        return RedisStore(url, retention)
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise ConfigError(
                "SESAME_STORE_URL: an sqlite URL needs a path, like sqlite:///data.db"
            )
        return SQLiteStore(Path(path))
    raise ConfigError(
        f"SESAME_STORE_URL: unsupported store {scheme!r}; use sqlite:///PATH or redis://HOST:PORT/DB"
    )
