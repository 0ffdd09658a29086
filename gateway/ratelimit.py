"""Requests for links per client address, counted in a moving window (SESAME_RATE_LIMIT).

Like the API's failed-authentication throttle: with a Redis store the counts live in that
Redis, so the limit holds across every gateway; otherwise each process counts in memory.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import RateLimitItem, parse
from limits.strategies import MovingWindowRateLimiter

from gateway.throttle import _storage
from sesame.errors import RateLimited

NAMESPACE = "sesame-downloads"


class ClientRateLimit:
    """Counts each request of a client and refuses the ones over the rate."""

    def __init__(self, rate: str, store_url: str | None = None) -> None:
        self.item: RateLimitItem = parse(rate)
        self.limiter = MovingWindowRateLimiter(_storage(store_url))

    def hit(self, client: str) -> None:
        """Count one request by ``client``. Raises RateLimited if it is one too many."""
        if self.limiter.hit(self.item, NAMESPACE, client):
            return
        reset_at = self.limiter.get_window_stats(self.item, NAMESPACE, client).reset_time
        raise RateLimited(max(1, math.ceil(reset_at - time.time())))


async def limit_rate(request: Request) -> None:
    """A route dependency: the app's rate limit, if one is set, for the request's client."""
    limit: ClientRateLimit | None = request.app.state.rate_limit
    if limit is not None:
        limit.hit(request.client.host if request.client else "")
