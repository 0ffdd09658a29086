"""What the Links and Activity pages ask the store about the download log: a filter, and
the answers computed by the store (in SQL, or over a bounded part of the Redis log)."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sesame.models import MAX_USER_AGENT, DownloadEvent

UNKNOWN_FILE = "(unknown link)"  # the file of a row whose link record is gone
EPOCH = date(1970, 1, 1)


# Longer than any field a search reads, even casefolded (which makes a character three at
# most): a longer needle finds nothing either, and SQLite refuses a LIKE pattern past 50,000
# bytes. (A recipient is at most 500 characters, an address 64, a user agent MAX_USER_AGENT;
# an agent logged before Sesame clipped them may be longer, and is found by the cut text.)
MAX_NEEDLE = 3 * MAX_USER_AGENT + 1


@functools.lru_cache(maxsize=4096)  # a series names each day once per file
def iso_day(day: int) -> str:
    """Day ``day`` since 1970-01-01 as ``YYYY-MM-DD``."""
    return (EPOCH + timedelta(days=day)).isoformat()


@dataclass(frozen=True)
class LogFilter:
    """Which rows of the log: at or after ``since``, before ``until`` (Unix seconds; None:
    no bound), of ``link_id``, of links to ``files``, with ``outcomes`` (empty: any), and
    containing ``text`` (case-insensitive) in the link's recipient, the link id, the client
    address or the user agent."""

    since: float | None = None
    until: float | None = None
    link_id: str | None = None
    files: Collection[str] = ()
    outcomes: Collection[str] = ()
    text: str = ""

    @property
    def needle(self) -> str:
        """``text`` as the stores match it: casefolded, cut to MAX_NEEDLE."""
        return self.text.strip().casefold()[:MAX_NEEDLE]


@dataclass(frozen=True)
class Totals:
    """What the rows of a filter add up to."""

    downloads: int = 0  # counted: took one from a link's limit
    aborted: int = 0
    previews: int = 0
    bytes_sent: int = 0
    clients: int = 0  # distinct client addresses
    rows: int = 0


@dataclass(frozen=True)
class DayFile:
    """Counted downloads and bytes sent by the rows of one local day and one file."""

    day: str  # YYYY-MM-DD
    file: str
    downloads: int
    bytes_sent: int


@dataclass(frozen=True)
class LogRow:
    """A row of the log with its link's file and recipient (as far as they are known)."""

    event: DownloadEvent
    file: str
    recipient: str | None
