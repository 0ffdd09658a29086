"""Lifetimes written the way people write them: ``90s``, ``10m``, ``2h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re

from sesame.errors import InvalidInput

MAX_SECONDS = 100 * 365 * 86400  # past any setting; keeps every sum of times in 64 bits
UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d{1,9})\s*([wdhms])")
_WHOLE = re.compile(r"(?:\d{1,9}\s*[wdhms]\s*)+")


def parse_lifetime(text: str | int) -> int:
    """Return the number of seconds ``text`` stands for; a bare number means seconds.

    Raises InvalidInput for anything else, and for zero.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        cleaned = str(text).strip().lower()
        if cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 12:
            seconds = int(cleaned)
        elif _WHOLE.fullmatch(cleaned):
            seconds = sum(int(n) * UNITS[unit] for n, unit in _PART.findall(cleaned))
        else:
            raise InvalidInput(
                f"{str(text)!r} is not a lifetime; write it like 90s, 10m, 2h or 7d."
            )
    if seconds <= 0:
        raise InvalidInput("A lifetime must be longer than zero seconds.")
    if seconds > MAX_SECONDS:
        raise InvalidInput("A lifetime must be shorter than 100 years.")
    return seconds


def format_lifetime(seconds: int) -> str:
    """Write ``seconds`` back in the short form, largest units first (``5400`` -> ``1h30m``)."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in UNITS.items():
        if unit == "w":
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
