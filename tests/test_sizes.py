"""Sizes are written one way everywhere: binary units after a space (``sesame.models``)."""

from __future__ import annotations

import pytest

from sesame.models import human_size


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (15, "15 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),
        (30 * 1024**2, "30.0 MiB"),
        (int(31.5 * 1000**2), "30.0 MiB"),
        (512 * 1024**2, "512.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2 * 1024**5, "2048.0 TiB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    """Bytes as such below 1 KiB, then one decimal of the largest unit under 1024."""
    assert human_size(size) == text
