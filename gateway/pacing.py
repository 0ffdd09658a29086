"""What a download does between chunks to protect the owner's bandwidth: keep its place
among the downloads in flight."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sesame.bandwidth import Ticket
from sesame.models import Link
from sesame.service import Service


def pacer(
    service: Service, link: Link, ticket: Ticket | None
) -> Callable[[int], Awaitable[None]] | None:
    """The hook a download calls after each chunk it sends, or None if it needs none."""
    if ticket is None:
        return None

    async def after_chunk(nbytes: int) -> None:
        service.bandwidth.renew(ticket)

    return after_chunk
