"""A batch of downloads begun on a real Redis in few round trips (sesame.store.redis_batch):
one write for up to CHUNK downloads, each still decided alone and exactly; a script Redis
forgot is loaded again and no download runs twice; one download's reply error fails that
download only; a Redis that stalls past the timeout costs at most one round trip's
downloads, and none is ever sent twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from sesame import ranges
from sesame.downloads import Admitted
from sesame.errors import StoreUnavailable
from sesame.models import Refusal
from sesame.store import redis_batch
from tests.support import BODY, FILE, VISITOR, FakeClock, make_service

# A script that keeps Redis busy (every other client waits) for ARGV[1] milliseconds.
_BUSY = """
local t = redis.call('TIME')
local stop = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
repeat t = redis.call('TIME') until tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 >= stop
"""


@pytest.fixture
def service(tmp_path: Path, redis_url: str) -> Any:
    # Redis expires what it keeps by its own clock.
    return make_service(tmp_path, FakeClock(time.time()), store_url=redis_url)


@contextmanager
def _stalled(url: str, seconds: float) -> Iterator[None]:
    """Redis busy with another client's script for ``seconds`` from when the block begins."""
    other = redis.Redis.from_url(url)
    busy = threading.Thread(target=other.eval, args=(_BUSY, 0, int(seconds * 1000)))
    busy.start()
    _until_busy(url)
    try:
        yield
    finally:
        busy.join()
        other.close()


def _until_busy(url: str) -> None:
    """Return once Redis keeps another client waiting (the busy script has begun)."""
    for _ in range(250):
        probe = redis.Redis.from_url(url, socket_timeout=0.02, socket_connect_timeout=1)
        try:
            probe.ping()
        except redis.TimeoutError:
            return
        finally:
            probe.close()
    raise AssertionError("Redis never got busy")


def _load_fails(script: Any) -> str:
    """Loading a script, as the connection breaks."""
    raise redis.exceptions.ConnectionError("Connection reset by peer")


def _starts(service: Any, links: list[Any]) -> list[Any]:
    whole = ranges.whole(len(BODY))
    return [
        service.downloads.starting(Admitted(link), whole, VISITOR, True).start for link in links
    ]


def _writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the writes of commands to Redis from here on."""
    writes: list[int] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        writes.append(1)
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return writes


def test_eight_downloads_leave_in_one_write_and_seventeen_in_three(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round trips of up to 8 downloads, as the README says."""
    service.store.begin_downloads(_starts(service, [service.share(FILE).link] * 2))  # loaded
    link = service.share(FILE).link
    writes = _writes(monkeypatch)
    assert service.store.begin_downloads(_starts(service, [link] * 8)) == [None] * 8
    assert len(writes) == 1
    assert service.store.begin_downloads(_starts(service, [link] * 17)) == [None] * 17
    monkeypatch.undo()
    assert len(writes) == 1 + 3


def test_a_batch_leaves_in_one_write_and_counts_exactly(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight counted downloads of a link with a limit of 5, begun together: one write to
    Redis carries them all; the first five are let in, the rest refused, in order."""
    service.store.begin_downloads(_starts(service, [service.share(FILE).link] * 2))  # loaded
    link = service.share(FILE, max_downloads=5).link
    starts = _starts(service, [link] * 8)
    writes = _writes(monkeypatch)
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


def test_a_stalled_redis_costs_one_round_trip_and_the_rest_is_not_sent(
    tmp_path: Path, redis_url: str
) -> None:
    """Redis stalls for longer than the store's timeout while a batch of 20 is begun: each
    download hears the store is unavailable; the first round trip's downloads run once
    Redis is back (their answers are lost: the price of a round trip), and the other 12
    are never sent."""
    service = make_service(tmp_path, FakeClock(time.time()), store_url=redis_url, store_timeout=0.3)
    link = service.share(FILE).link
    service.store.begin_downloads(_starts(service, [link] * 2))  # the script is loaded
    starts = _starts(service, [link] * 20)
    # Back before a second round trip would time out: it would be answered, if sent.
    with _stalled(redis_url, 0.6):
        answers = service.store.begin_downloads(starts)
    assert len(answers) == 20
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 2 + redis_batch.CHUNK
    assert len(service.events(link.id)) == 2 + redis_batch.CHUNK


def test_a_url_asking_for_retries_never_runs_a_download_twice(
    tmp_path: Path, redis_url: str
) -> None:
    """retry_on_timeout and retry_on_error in the store's URL: a download whose answer was
    lost to a stall is not sent again (it would count twice)."""
    url = f"{redis_url}?retry_on_timeout=true&retry_on_error=ConnectionError"
    service = make_service(tmp_path, FakeClock(time.time()), store_url=url, store_timeout=0.3)
    link = service.share(FILE).link
    (start,) = _starts(service, [link])
    service.store.begin_downloads([start])  # the script is loaded
    # Back before a second attempt would time out: it would be answered, if made.
    with _stalled(redis_url, 0.6), pytest.raises(StoreUnavailable):
        service.store.begin_download(start)
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 2


def test_answers_that_came_stand_when_loading_a_forgotten_script_fails(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis forgot the script between the second and third downloads of a round trip
    (SCRIPT FLUSH from elsewhere), and loading it again fails: the two that ran are let
    in, the others hear the store is unavailable."""
    link = service.share(FILE, max_downloads=10).link
    pipelined = redis_batch._pipelined

    def flushed_after_two(client: Any, sha: str, calls: list[Any]) -> list[Any]:
        answers = pipelined(client, sha, calls[:2])
        return answers + [redis.exceptions.NoScriptError("NOSCRIPT") for _ in calls[2:]]

    service.store.begin_downloads(_starts(service, [link] * 2))  # the script is loaded
    monkeypatch.setattr(redis_batch, "_pipelined", flushed_after_two)
    monkeypatch.setattr(service.store.redis, "script_load", _load_fails)
    answers = service.store.begin_downloads(_starts(service, [link] * 5))
    monkeypatch.undo()
    assert answers[:2] == [None, None]
    assert all(isinstance(answer, StoreUnavailable) for answer in answers[2:])
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 4


def test_nothing_more_is_sent_once_loading_a_forgotten_script_failed(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis forgot the script before a batch of 24, and loading it again fails: the first
    round trip (refused, so nothing ran) is the only one sent; every download hears the
    store is unavailable, and none is counted."""
    link = service.share(FILE).link
    service.store.begin_downloads(_starts(service, [link] * 2))  # the script is loaded
    service.store.redis.script_flush()

    monkeypatch.setattr(service.store.redis, "script_load", _load_fails)
    writes = _writes(monkeypatch)
    answers = service.store.begin_downloads(_starts(service, [link] * 24))
    monkeypatch.undo()
    assert len(writes) == 1
    assert len(answers) == 24
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 2
