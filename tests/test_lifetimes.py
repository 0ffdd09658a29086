"""Lifetimes as people write them."""

from __future__ import annotations

import pytest

from sesame.errors import InvalidInput
from sesame.lifetimes import format_lifetime, parse_lifetime


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        (" 10M ", 600),
        ("600", 600),
        (600, 600),
        ("1d2h3m4s", 93784),
    ],
)
def test_parse_lifetime(text: str | int, seconds: int) -> None:
    """Every way of writing a lifetime the README shows gives its number of seconds."""
    assert parse_lifetime(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "  ", "abc", "10x", "m", "-5m", "1.5h", "0", "0s", "0h0m", "10 minutes", "1h-30m", True],
)
def test_parse_lifetime_refuses(text: str | int) -> None:
    """Anything that is not a positive lifetime raises InvalidInput that shows the format."""
    with pytest.raises(InvalidInput):
        parse_lifetime(text)


def test_parse_lifetime_message_shows_the_format() -> None:
    """The refusal says how a lifetime is written."""
    with pytest.raises(InvalidInput, match="10m"):
        parse_lifetime("ten minutes")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m30s"), (600, "10m"), (5400, "1h30m"), (86400, "1d"), (604800, "7d"), (0, "0s")],
)
def test_format_lifetime(seconds: int, text: str) -> None:
    """Seconds are written back largest unit first, in days at most."""
    assert format_lifetime(seconds) == text


@pytest.mark.parametrize("seconds", [1, 59, 61, 3599, 3601, 86399, 93784, 30 * 86400])
def test_format_then_parse_round_trips(seconds: int) -> None:
    """What format_lifetime writes, parse_lifetime reads back to the same seconds."""
    assert parse_lifetime(format_lifetime(seconds)) == seconds
