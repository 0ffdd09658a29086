"""Requests for links per client address (SESAME_RATE_LIMIT), refused with 429 over it."""

from __future__ import annotations

from fastapi import Request

from gateway.throttle import Window
from sesame.errors import RateLimited


class ClientRateLimit(Window):
    """Counts each request of a client and refuses the ones over the rate."""

    def __init__(self, rate: str, store_url: str | None = None, timeout: float = 2.0) -> None:
        super().__init__(rate, "sesame-downloads", store_url, timeout)

    def check(self, client: str) -> None:
        """Count one request by ``client``. Raises RateLimited if it is one too many."""
        wait = self.hit(client)
        if wait:
            raise RateLimited(wait)


def limit_rate(request: Request, client: str) -> None:
    """The app's rate limit, if one is set, for the request's ``client`` address (it may
    ask Redis: call it off the event loop)."""
    limit: ClientRateLimit | None = request.app.state.rate_limit
    if limit is not None:
        limit.check(client)
