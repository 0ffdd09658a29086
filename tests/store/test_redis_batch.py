"""A batch of downloads begun on a real Redis in one round trip (sesame.store.redis_batch):
one write for the whole batch, each download still decided alone and exactly; a script
Redis forgot is loaded again and no download runs twice; one download's reply error fails
that download only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from sesame import ranges
from sesame.downloads import Admitted
from sesame.errors import StoreUnavailable
from sesame.models import Refusal
from tests.support import BODY, FILE, VISITOR, FakeClock, make_service


@pytest.fixture
def service(tmp_path: Path, redis_url: str) -> Any:
    # Redis expires what it keeps by its own clock.
    return make_service(tmp_path, FakeClock(time.time()), store_url=redis_url)


def _starts(service: Any, links: list[Any]) -> list[Any]:
    whole = ranges.whole(len(BODY))
    return [
        service.downloads.starting(Admitted(link), whole, VISITOR, True).start for link in links
    ]


def test_a_batch_leaves_in_one_write_and_counts_exactly(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight counted downloads of a link with a limit of 5, begun together: one write to
    Redis carries them all; the first five are let in, the rest refused, in order."""
    service.store.begin_downloads(_starts(service, [service.share(FILE).link] * 2))  # loaded
    link = service.share(FILE, max_downloads=5).link
    starts = _starts(service, [link] * 8)
    writes: list[int] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        writes.append(1)
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    answers = service.store.begin_downloads(starts)
    monkeypatch.undo()
    assert len(writes) == 1
    assert answers == [None] * 5 + [Refusal.LINK] * 3
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 5
    assert len(service.events(link.id)) == 5


def test_a_forgotten_script_is_loaded_again_and_no_download_runs_twice(service: Any) -> None:
    """Redis forgot its scripts (SCRIPT FLUSH, as a restart does) before a batch: every
    download of it is begun once, none twice."""
    link = service.share(FILE, max_downloads=10).link
    service.store.begin_downloads(_starts(service, [link] * 2))  # the script is loaded
    service.store.redis.script_flush()
    answers = service.store.begin_downloads(_starts(service, [link] * 4))
    assert answers == [None] * 4
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 6
    assert len(service.events(link.id)) == 6


def test_one_downloads_reply_error_fails_that_one_only(service: Any) -> None:
    """A link whose record Redis holds as something else than a hash (a damaged database):
    its download of the batch fails as the store being unavailable; the others of the
    batch are begun."""
    good, broken = service.share(FILE).link, service.share(FILE).link
    service.store.redis.delete(f"sesame:link:{broken.id}")
    service.store.redis.set(f"sesame:link:{broken.id}", "not a hash")
    answers = service.store.begin_downloads(_starts(service, [good, broken, good]))
    assert answers[0] is None and answers[2] is None
    assert isinstance(answers[1], StoreUnavailable)
    record = service.store.get_link(good.id)
    assert record is not None and record.downloads == 2
