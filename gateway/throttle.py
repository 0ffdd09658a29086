"""Requests per client counted in a moving window, for the API's failed authentications and
for link requests (SESAME_RATE_LIMIT).

With a Redis store the counts live in the same Redis, so every gateway sees a client's
requests at any of them; otherwise each process counts in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from sesame.errors import StoreUnavailable


class Window:
    """At most ``rate`` (``"10/minute"``) events per client in ``namespace``."""

    def __init__(
        self, rate: str, namespace: str, store_url: str | None = None, timeout: float = 2.0
    ) -> None:
        self.item: RateLimitItem = parse(rate)
        self.namespace = namespace
        storage, self.failures = _storage(store_url, timeout)
        self.limiter = MovingWindowRateLimiter(storage)

    def retry_after(self, client: str) -> int:
        """0 if ``client`` has room for one more now, else the seconds until it has.
        Raises StoreUnavailable if Redis fails."""
        with _counting(self.failures):
            if self.limiter.test(self.item, self.namespace, client):
                return 0
            stats = self.limiter.get_window_stats(self.item, self.namespace, client)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def hit(self, client: str) -> int:
        """Count one event of ``client``: 0 if it fit, else the seconds to wait.
        Raises StoreUnavailable if Redis fails."""
        with _counting(self.failures):
            if self.limiter.hit(self.item, self.namespace, client):
                return 0
        return self.retry_after(client)


@contextmanager
def _counting(failures: tuple[type[Exception], ...]) -> Iterator[None]:
    """Redis failing under the counts is the store failing, as for every other store call."""
    try:
        yield
    except failures as exc:
        raise StoreUnavailable("rate limit", str(exc)[:200] or type(exc).__name__) from exc


class AuthThrottle(Window):
    """Says whether a client may try to authenticate, and counts its failures."""

    def __init__(self, rate: str, store_url: str | None = None, timeout: float = 2.0) -> None:
        super().__init__(rate, "sesame-api-auth", store_url, timeout)

    def failed(self, client: str) -> None:
        """Count one failed attempt by ``client``."""
        self.hit(client)


def _storage(store_url: str | None, timeout: float) -> tuple[Storage, tuple[type[Exception], ...]]:
    """The counts' storage, and what it raises when it fails. redis is imported only for a
    Redis store: it and what it imports cost a gateway on SQLite about 5 MB, measured."""
    if store_url and urlsplit(store_url).scheme in ("redis", "rediss"):
        import redis

        storage = RedisStorage(store_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return storage, (redis.RedisError, StorageError)
    return MemoryStorage(), (StorageError,)
