"""The owner's bandwidth, protected: downloads in flight under a cap, bytes per day under a
budget. Both live in the store, so the limits hold across every gateway process.

Days are UTC days. A download reserves its bytes on the day it starts and settles them there.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import ByteSize, TypeAdapter, ValidationError

from sesame.errors import BudgetSpent, InvalidInput, TooBusy
from sesame.links import Clock
from sesame.models import DownloadEvent, DownloadStart, Refusal, utc
from sesame.settings import Settings
from sesame.store import Store

DAY = 86400
BUSY_RETRY_AFTER = 30  # what a client over the concurrency cap is told to wait
HISTORY_DAYS = 30
MIN_RATE = 1024  # bytes per second: below it a download would mostly be waiting
_BYTES: TypeAdapter[ByteSize] = TypeAdapter(ByteSize)


def parse_rate(value: str | int | None, default: int | None = None) -> int | None:
    """A speed cap in bytes per second from ``500KiB``, ``2MB`` or a number of bytes;
    ``default`` for None, no cap for ``0`` or an empty text. Raises InvalidInput."""
    if value is None:
        return default
    if str(value).strip() in ("", "0"):
        return None
    try:
        rate = int(_BYTES.validate_python(str(value).strip().removesuffix("/s")))
    except ValidationError:
        raise InvalidInput(f"{value!r} is not a speed like 500KiB or 2MB (per second).") from None
    if rate < MIN_RATE:
        raise InvalidInput("A speed cap must be at least 1KiB per second (or none at all).")
    return rate


@dataclass(frozen=True)
class Usage:
    """What the dashboard shows: today's bytes against the budget, downloads in flight
    against the cap, and bytes per day for the last 30 days (oldest first, today last)."""

    today: int
    budget: int | None
    downloads: int
    max_downloads: int | None
    per_day: list[tuple[date, int]]
    resets_at: datetime


class Bandwidth:
    """The owner's limits on downloads: what a download's start asks of the store, why a
    refusal is TooBusy or BudgetSpent, the lease a running download renews."""

    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.cap = settings.max_concurrent_downloads or None
        self.budget = None if settings.daily_egress is None else int(settings.daily_egress)
        self.lease = settings.download_lease

    def start(
        self,
        link_id: str,
        counted: bool,
        nbytes: int,
        byte_cap: int | None,
        event: DownloadEvent,
        settled: bool,
        lease: int | None = None,
        session: str = "",
        piece: bool = False,
    ) -> DownloadStart:
        """What the store must let in for a download of ``nbytes`` now: every request must
        fit in what is left of today's budget (it reserves only its own bytes, so a part asks
        for less than the whole); a ``counted`` one takes one from the link's limit; every download
        needs a place under the concurrency cap, held for ``lease`` seconds (the settings'
        by default) unless renewed. ``settled``, ``session``, ``piece``: see DownloadStart."""
        now = int(self.clock())
        return DownloadStart(
            link_id=link_id,
            now=now,
            nbytes=nbytes,
            counted=counted,
            byte_cap=byte_cap,
            day=now // DAY,
            budget=self.budget,
            slot_id="" if settled else secrets.token_urlsafe(12),  # a settled one takes none
            until=now + (lease or self.lease),
            cap=self.cap,
            event=event,
            settled=settled,
            session=session,
            piece=piece,
        )

    def refused(self, refusal: Refusal, start: DownloadStart) -> BudgetSpent | TooBusy:
        """The error for a download the store refused to protect the bandwidth."""
        if refusal is Refusal.BUDGET:
            resets = (start.day + 1) * DAY
            return BudgetSpent(utc(resets), resets - start.now)
        return TooBusy(self.cap or 0, BUSY_RETRY_AFTER)

    def usage(self) -> Usage:
        """The numbers for the dashboard, now."""
        now = int(self.clock())
        today = now // DAY
        served = self.store.egress(today - HISTORY_DAYS + 1, today)
        per_day = [
            (utc(day * DAY).date(), served.get(day, 0))
            for day in range(today - HISTORY_DAYS + 1, today + 1)
        ]
        return Usage(
            today=served.get(today, 0),
            budget=self.budget,
            downloads=self.store.count_slots(now),
            max_downloads=self.cap,
            per_day=per_day,
            resets_at=utc((today + 1) * DAY),
        )
