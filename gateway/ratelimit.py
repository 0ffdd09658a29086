"""Requests for links per client address (SESAME_RATE_LIMIT), refused with 429 over it."""

from __future__ import annotations

from gateway.throttle import Window
from sesame.errors import RateLimited


class ClientRateLimit(Window):
    """Counts each request of a client and refuses the ones over the rate."""

    def __init__(self, rate: str, store_url: str | None = None, timeout: float = 2.0) -> None:
        super().__init__(rate, "sesame-downloads", store_url, timeout)

    def check(self, client: str) -> None:
        """Count one request by ``client`` (it may ask Redis: call it off the event loop).
        Raises RateLimited if it is one too many."""
        wait = self.hit(client)
        if wait:
            raise RateLimited(wait)
