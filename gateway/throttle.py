"""Failed API authentications per client, counted in a moving window.

With a Redis store the counts live in the same Redis, so every gateway refuses a client that
failed too often at any of them; otherwise each process counts in memory.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

NAMESPACE = "sesame-api-auth"


class AuthThrottle:
    """Says whether a client may try to authenticate, and counts its failures."""

    def __init__(self, rate: str, store_url: str | None = None) -> None:
        self.item: RateLimitItem = parse(rate)
        self.limiter = MovingWindowRateLimiter(_storage(store_url))

    def retry_after(self, client: str) -> int:
        """0 if ``client`` may try now, else the seconds until it may try again."""
        if self.limiter.test(self.item, NAMESPACE, client):
            return 0
        reset_at = self.limiter.get_window_stats(self.item, NAMESPACE, client).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def failed(self, client: str) -> None:
        """Count one failed attempt by ``client``."""
        self.limiter.hit(self.item, NAMESPACE, client)


def _storage(store_url: str | None) -> Storage:
    if store_url and urlsplit(store_url).scheme in ("redis", "rediss"):
        return RedisStorage(store_url)
    return MemoryStorage()
