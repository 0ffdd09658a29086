"""Requests per client counted in a moving window, for the API's failed authentications and
for link requests (SESAME_RATE_LIMIT).

With a Redis store the counts live in the same Redis, so every gateway sees a client's
requests at any of them; otherwise each process counts in memory.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter


class Window:
    """At most ``rate`` (``"10/minute"``) events per client in ``namespace``."""

    def __init__(self, rate: str, namespace: str, store_url: str | None = None) -> None:
        self.item: RateLimitItem = parse(rate)
        self.namespace = namespace
        self.limiter = MovingWindowRateLimiter(_storage(store_url))

    def retry_after(self, client: str) -> int:
        """0 if ``client`` has room for one more now, else the seconds until it has."""
        if self.limiter.test(self.item, self.namespace, client):
            return 0
        reset_at = self.limiter.get_window_stats(self.item, self.namespace, client).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def hit(self, client: str) -> int:
        """Count one event of ``client``: 0 if it fit, else the seconds to wait."""
        if self.limiter.hit(self.item, self.namespace, client):
            return 0
        return self.retry_after(client)


class AuthThrottle(Window):
    """Says whether a client may try to authenticate, and counts its failures."""

    def __init__(self, rate: str, store_url: str | None = None) -> None:
        super().__init__(rate, "sesame-api-auth", store_url)

    def failed(self, client: str) -> None:
        """Count one failed attempt by ``client``."""
        self.hit(client)


def _storage(store_url: str | None) -> Storage:
    if store_url and urlsplit(store_url).scheme in ("redis", "rediss"):
        return RedisStorage(store_url)
    return MemoryStorage()
