"""What part of a file a request gets: its ``Range`` header (and ``If-Range``) judged once,
with the file's size known, into the byte spans that will be sent (RFC 9110, section 14).

The answer is what the download reserves and what the response sends, nothing else: there
is no second parser behind it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from sesame.values import quick_init

MAX_SPANS = 16  # more spans than this, once merged, are answered with the whole file
MAX_ITEMS = 256  # a header listing more ranges than this is refused (416) unread

Span = tuple[int, int]  # first byte, one past the last
_SINGLE = re.compile(r"bytes=(\d{1,19}-\d{0,19}|-\d{1,19})", re.ASCII)


@quick_init
@dataclass(frozen=True, slots=True)
class Plan:
    """The answer to a GET for a file of ``size`` bytes: 200 with the whole file, 206 with
    ``spans`` (sorted, merged, never empty), or 416 with none."""

    status: int
    spans: tuple[Span, ...]
    size: int
    nbytes: int = field(init=False, repr=False, compare=False)  # the file's bytes sent

    def __post_init__(self) -> None:
        object.__setattr__(self, "nbytes", sum(end - start for start, end in self.spans))

    @property
    def whole(self) -> bool:
        """Whether the answer holds every byte of the file in one request."""
        return self.spans == ((0, self.size),) or (self.size == 0 and self.status == 200)

    @property
    def reaches_end(self) -> bool:
        """Whether the answer holds the file's last byte: the request that finishes a
        download, whether it began at byte 0 or is the last piece of a resumed one."""
        return self.status == 200 or (bool(self.spans) and self.spans[-1][1] == self.size)


@functools.lru_cache(maxsize=1024)
def whole(size: int) -> Plan:
    """The whole file, 200 (one for each size: a plan is a value)."""
    return Plan(200, ((0, size),) if size else (), size)


def plan(
    size: int,
    header: str | None,
    if_range: str | None = None,
    validators: tuple[str, ...] = (),
    single: bool = False,
) -> Plan:
    """What a GET with ``Range: header`` gets of a file of ``size`` bytes.

    The whole file (200) without a Range header, with a unit other than bytes (RFC 9110
    says to ignore it), with an ``If-Range`` that is none of ``validators`` (the file's
    ETag and Last-Modified date, compared exactly: the client's copy is another version),
    or with more than MAX_SPANS spans. 416 for a header that cannot be parsed or asks for
    no byte of the file; 206 with the merged spans otherwise, even when they are the whole
    file (``bytes=0-`` is how download managers ask whether they may resume).

    ``single``: for a server that sends the body itself and reads the header again (nginx
    with ``max_ranges 1``): only one range spelled exactly ``bytes=A-B`` is a part; anything
    else, which that server might read otherwise, is the whole file.
    """
    if header is None:
        return whole(size)
    if single and not _SINGLE.fullmatch(header):
        return whole(size)
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes":
        return whole(size)
    if if_range is not None and if_range.strip() not in validators:
        return whole(size)
    spans = _parse(ranges, size)
    if spans is None:
        return Plan(416, (), size)
    merged = _merge(spans)
    if not merged:
        return Plan(416, (), size)
    if len(merged) > MAX_SPANS:
        return whole(size)
    return Plan(206, tuple(merged), size)


def _parse(ranges: str, size: int) -> list[Span] | None:
    """The spans a ``bytes=`` list asks for, clipped to the file; None if it is malformed."""
    spans: list[Span] = []
    items = ranges.split(",")
    if len(items) > MAX_ITEMS:
        return None
    for item in items:
        item = item.strip()
        if not item:
            continue  # RFC 9110 allows empty list elements
        first, dash, last = item.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or not _number(first) or not _number(last):
            return None
        if first == "":
            if last == "":
                return None
            suffix = int(last)
            if suffix > 0 and size > 0:
                spans.append((max(0, size - suffix), size))
            continue
        start = int(first)
        end = size if last == "" else int(last) + 1
        if last != "" and end <= start:
            return None
        if start < size:
            spans.append((start, min(end, size)))
    return spans


def _number(text: str) -> bool:
    """An ASCII digit string of at most 19 digits, or nothing (``"²".isdigit()`` is true and
    ``int("²")`` fails; ``int()`` refuses 4,300 digits and more)."""
    return text == "" or (len(text) <= 19 and text.isascii() and text.isdigit())


def _merge(spans: list[Span]) -> list[Span]:
    """Spans sorted, with overlapping and touching ones joined."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
