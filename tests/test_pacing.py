"""The per-link speed cap: the delays a capped download waits, computed on a fake clock, and
one short real transfer that cannot finish faster than its cap allows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.pacing import CHUNK, MIN_CHUNK, Pacer, delay
from sesame.bandwidth import parse_rate
from sesame.errors import InvalidInput
from sesame.service import Service
from tests.support import make_settings, write_files


@pytest.mark.parametrize(
    ("sent", "elapsed", "rate", "wait"),
    [
        (1000, 0.0, 1000, 1.0),  # a second's worth at once: wait a second
        (1000, 0.4, 1000, 0.6),
        (1000, 1.0, 1000, 0.0),  # exactly on time
        (1000, 3.0, 1000, 0.0),  # a slow client never waits
        (0, 0.0, 1000, 0.0),
    ],
)
def test_delay_keeps_the_average_under_the_rate(
    sent: int, elapsed: float, rate: int, wait: float
) -> None:
    """delay() is the time the bytes sent should have taken, less the time they did."""
    assert delay(sent, elapsed, rate) == pytest.approx(wait)


class FakeTime:
    """A monotonic clock that only sleeping (or the test) moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_capped_download_sleeps_a_quarter_second_per_slice() -> None:
    """At 64 KiB/s, slices of 16 KiB sent instantly wait 0.25 s each: 8 slices, 2 s,
    exactly the time 128 KiB take at the cap."""
    fake = FakeTime()
    pacer = Pacer(64 * 1024, fake, fake.sleep)
    assert pacer.chunk_size == 16 * 1024
    for _ in range(8):
        asyncio.run(pacer(pacer.chunk_size))
    assert fake.slept == pytest.approx([0.25] * 8)
    assert fake.now - 100.0 == pytest.approx(2.0)
    asyncio.run(pacer(pacer.chunk_size, more=False))
    assert len(fake.slept) == 8, "nothing to wait for after the last chunk"


def test_a_slow_client_is_never_held_back() -> None:
    """A client slower than the cap never waits."""
    fake = FakeTime()
    pacer = Pacer(64 * 1024, fake, fake.sleep)
    for _ in range(4):
        fake.now += 0.5  # the network took half a second per slice
        asyncio.run(pacer(pacer.chunk_size))
    assert fake.slept == []


def test_an_uncapped_download_never_sleeps_and_keeps_big_chunks() -> None:
    """Without a cap: no say over chunk sizes, no sleeping."""
    fake = FakeTime()
    pacer = Pacer(None, fake, fake.sleep)
    asyncio.run(pacer(CHUNK))
    assert pacer.chunk_size is None and fake.slept == []


def test_slices_are_never_tiny() -> None:
    """A very low cap still sends slices of MIN_CHUNK, waiting longer between them."""
    assert Pacer(1024).chunk_size == MIN_CHUNK


@pytest.mark.parametrize(
    ("text", "rate"),
    [("500KiB", 512_000), ("2MB", 2_000_000), ("2MB/s", 2_000_000), (4096, 4096), ("0", None)],
)
def test_rates_are_read_like_sizes(text: str | int, rate: int | None) -> None:
    """A speed is a size a second, as pydantic's ByteSize reads it; 0 means no cap."""
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-5KiB", "100", "1.5 parsecs"])
def test_unusable_rates_are_refused(text: str) -> None:
    """Nonsense and caps under 1 KiB/s are refused with a sentence."""
    with pytest.raises(InvalidInput):
        parse_rate(text)


def test_a_real_capped_transfer_takes_at_least_its_time(tmp_path: Path) -> None:
    """A 10 KiB file on a link capped at 16 KiB/s goes in 4 KiB slices; its last slice cannot
    leave before the 8 KiB ahead of it took their 0.5 s. (Only a lower bound: never flaky.)"""
    body = bytes(range(256)) * 40
    settings = make_settings(
        tmp_path, files_dir=write_files(tmp_path / "files", {"data.bin": body})
    )
    service = Service.from_settings(settings)
    client = TestClient(create_app(settings, service))
    capped = service.share("data.bin", rate="16KiB").url.removeprefix(settings.public_url)
    started = time.monotonic()
    response = client.get(capped)
    took = time.monotonic() - started
    assert response.content == body
    assert took >= 0.5
    assert service.link(service.links()[0].link.id).link.rate == 16 * 1024
    service.store.close()
