"""Where a period of the log divides between a store's sums of whole days and the rows it
reads one by one (see sqlite_rollup.py and redis_rollup.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sesame.activity import LogFilter

DAY = 86400
OFFSETS_KEPT = 4  # day boundaries a store keeps sums for (UTC and the zones pages asked for)
_FAR = 1 << 40  # days: beyond any period's bound


@dataclass(frozen=True)
class Split:
    """Where a period divides between the sums and the rows read one by one, for the day
    boundaries of ``offset``: the sums count the rows up to ``cursor`` (a row id in SQLite,
    a stream id in Redis) of the whole days ``first_day`` to ``last_day``; every other row
    of the period is read: those past the cursor, and those in [low, start) and [end, high).
    """

    offset: int
    cursor: int | str
    first_day: int
    last_day: int
    start: float  # where the whole days begin
    end: float  # where they end
    low: float  # the period's bounds
    high: float

    @classmethod
    def of(cls, query: LogFilter, offset: int, cursor: int | str) -> Split:
        far = float(_FAR * DAY)
        first = -_FAR if query.since is None else math.ceil((query.since + offset) / DAY)
        last = _FAR if query.until is None else math.floor((query.until + offset) / DAY) - 1
        start = -far if query.since is None else first * DAY - offset
        end = far if query.until is None else (last + 1) * DAY - offset
        low = -far if query.since is None else query.since
        high = far if query.until is None else query.until
        return cls(offset, cursor, first, last, start, max(start, end), low, high)

    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def parts(self) -> list[tuple[float, float]]:
        """The part-days read one by one, as [low, high) pairs (none empty)."""
        pairs = [(self.low, min(self.start, self.high)), (max(self.end, self.low), self.high)]
        return [(low, high) for low, high in pairs if low < high]


def making_way(kept: list[int]) -> list[int]:
    """Of the day boundaries ``kept`` besides UTC, those to forget so that one more fits
    in OFFSETS_KEPT (with UTC's)."""
    return kept[: max(0, len(kept) - OFFSETS_KEPT + 2)]
