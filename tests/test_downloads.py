"""A download's steps (admit, begin, finish) over real SQLite and real files."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sesame import ranges
from sesame.downloads import Admitted
from sesame.errors import LinkExhausted, LinkExpired, LinkInvalid, LinkRevoked
from sesame.models import Outcome, Visitor
from sesame.service import Service
from tests.support import NOW, VISITOR, FakeClock, take


def token_of(url: str) -> str:
    return url.rsplit("/d/", 1)[1]


def test_admit_good_link(service: Service) -> None:
    """A fresh link's token admits its record."""
    shared = service.share("hello.txt")
    assert service.downloads.admit(token_of(shared.url)) == Admitted(shared.link)


def test_admit_through_the_last_second(service: Service, clock: FakeClock) -> None:
    """A link admits at its last second and is LinkExpired one second later."""
    shared = service.share("hello.txt", "10m")
    clock.advance(600)
    service.downloads.admit(token_of(shared.url))
    clock.advance(1)
    with pytest.raises(LinkExpired) as info:
        service.downloads.admit(token_of(shared.url))
    assert info.value.link_id == shared.link.id


class CountingStore:
    """Wraps a store and records which of its methods were called."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.store, name)


def test_forged_and_expired_never_reach_the_store(service: Service, clock: FakeClock) -> None:
    """A forged or expired token is refused by the signature check alone."""
    shared = service.share("hello.txt", "1m")
    counting = CountingStore(service.store)
    service.downloads.store = counting  # type: ignore[assignment]
    with pytest.raises(LinkInvalid):
        service.downloads.admit(token_of(shared.url)[:-1])
    clock.advance(61)
    with pytest.raises(LinkExpired):
        service.downloads.admit(token_of(shared.url))
    assert counting.calls == []


def test_a_download_is_one_trip_to_begin_and_one_to_finish(service: Service) -> None:
    """begin and finish each ask the store once, whatever they settle; a second finish
    changes nothing."""
    link = service.share("hello.txt", max_downloads=3).link
    counting = CountingStore(service.store)
    service.downloads.store = counting  # type: ignore[assignment]
    download = take(service, link, 14, settled=False)
    event = download.finish(4, False)
    assert download.finish(14, True) is event
    assert counting.calls == ["begin_download", "end_download"]
    assert (event.outcome, event.bytes_sent, event.counted) == (Outcome.ABORTED, 4, False)
    assert service.store.get_link(link.id).bytes_served == 4  # type: ignore[union-attr]


def test_a_download_settled_as_it_began_costs_no_second_trip(service: Service) -> None:
    """A body over once let in is settled in the trip that begins it; only an abort that
    turns up afterwards costs a second, which gives the download back."""
    link = service.share("hello.txt", max_downloads=1).link
    counting = CountingStore(service.store)
    service.downloads.store = counting  # type: ignore[assignment]
    take(service, link, 14).finish(14, True)
    assert counting.calls == ["begin_download"]
    counting.calls.clear()
    other = service.share("hello.txt", max_downloads=1).link
    take(service, other, 14).finish(3, False)
    assert counting.calls == ["begin_download", "end_download"]
    record = service.store.get_link(other.id)
    assert record is not None and record.downloads == 0
    (row,) = service.store.list_events(other.id)
    assert (row.outcome, row.bytes_sent) == (Outcome.ABORTED, 3)


def test_admit_revoked(service: Service, clock: FakeClock) -> None:
    """A revoked link raises LinkRevoked with the time of revocation."""
    shared = service.share("hello.txt")
    clock.advance(3)
    service.revoke(shared.link.id)
    with pytest.raises(LinkRevoked) as info:
        service.downloads.admit(token_of(shared.url))
    assert info.value.revoked_at.timestamp() == NOW + 3


def test_a_used_up_link_is_refused_what_would_count(service: Service) -> None:
    """A link downloaded max_downloads times: check_open and a begin that would count raise
    LinkExhausted with the limit; a piece short of the end still passes (within the cap)."""
    shared = service.share("hello.txt", max_downloads=2)
    for _ in range(2):
        take(service, shared.link, 14)
    admitted = service.downloads.admit(token_of(shared.url))
    with pytest.raises(LinkExhausted) as info:
        admitted.check_open()
    assert info.value.max_downloads == 2
    with pytest.raises(LinkExhausted):
        service.downloads.begin(admitted, ranges.whole(14), VISITOR)
    service.downloads.begin(admitted, ranges.plan(14, "bytes=0-3"), VISITOR)


def test_admit_record_from_another_time(service: Service) -> None:
    """A well-signed token whose record was made at another time opens nothing: LinkInvalid."""
    shared = service.share("hello.txt")
    other = replace(shared.link, created_at=NOW - 1, expires_at=NOW + 599)
    token = service.signer.mint(other.id, other.lifetime, other.created_at)
    with pytest.raises(LinkInvalid):
        service.downloads.admit(token)


def test_admit_unknown_link(service: Service) -> None:
    """A well-signed token for a link the store does not know is LinkInvalid."""
    with pytest.raises(LinkInvalid):
        service.downloads.admit(service.signer.mint("notastored1", 600, NOW))


def test_begin_after_admission_can_still_fail(service: Service) -> None:
    """If the link is revoked between admit and begin, begin raises LinkRevoked."""
    shared = service.share("hello.txt", max_downloads=1)
    admitted = service.downloads.admit(token_of(shared.url))
    service.revoke(admitted.link.id)
    with pytest.raises(LinkRevoked):
        service.downloads.begin(admitted, ranges.whole(14), VISITOR)


def test_begin_race_lost(service: Service) -> None:
    """Two clients' admitted requests for the last download: the second begin raises
    LinkExhausted."""
    shared = service.share("hello.txt", max_downloads=1)
    first, second = (service.downloads.admit(token_of(shared.url)) for _ in range(2))
    service.downloads.begin(first, ranges.whole(14), VISITOR)
    with pytest.raises(LinkExhausted):
        service.downloads.begin(second, ranges.whole(14), Visitor("10.0.0.2", "other"))


def test_an_unfinished_download_is_given_back(service: Service) -> None:
    """finish() of a counted download that did not complete returns it and its unsent bytes."""
    shared = service.share("hello.txt", max_downloads=1)
    take(service, shared.link, 14, settled=False).finish(2, False)
    record = service.link(shared.link.id).link
    assert (record.downloads, record.bytes_served) == (0, 2)
    take(service, shared.link, 14)
