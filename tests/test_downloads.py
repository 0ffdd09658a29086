"""A download's steps (admit, begin, end) over real SQLite and real files."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sesame.errors import LinkExhausted, LinkExpired, LinkInvalid, LinkRevoked
from sesame.models import Access, DownloadEvent, Outcome
from sesame.service import Service
from tests.support import NOW, FakeClock


def token_of(url: str) -> str:
    return url.rsplit("/d/", 1)[1]


def test_admit_good_link(service: Service) -> None:
    """A fresh link's token admits its record."""
    shared = service.share("hello.txt")
    assert service.downloads.admit(token_of(shared.url)) == shared.link


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


def test_a_download_is_one_trip_to_begin_and_one_to_end(service: Service) -> None:
    """begin and end each ask the store once, whatever they settle."""
    link = service.downloads.admit(token_of(service.share("hello.txt", max_downloads=3).url))
    counting = CountingStore(service.store)
    service.downloads.store = counting  # type: ignore[assignment]
    ticket = service.downloads.begin(link, Access.FULL, 14, 14)
    event = DownloadEvent(link.id, NOW, None, None, 200, 4, Outcome.ABORTED)
    service.downloads.end(ticket, 4, False, event)
    assert counting.calls == ["begin_download", "end_download"]
    assert service.store.get_link(link.id).bytes_served == 4  # type: ignore[union-attr]


def test_admit_revoked(service: Service, clock: FakeClock) -> None:
    """A revoked link raises LinkRevoked with the time of revocation."""
    shared = service.share("hello.txt")
    clock.advance(3)
    service.revoke(shared.link.id)
    with pytest.raises(LinkRevoked) as info:
        service.downloads.admit(token_of(shared.url))
    assert info.value.revoked_at.timestamp() == NOW + 3


def test_admit_used_up(service: Service) -> None:
    """A link downloaded max_downloads times raises LinkExhausted with the limit."""
    shared = service.share("hello.txt", max_downloads=2)
    for _ in range(2):
        service.downloads.begin(service.downloads.admit(token_of(shared.url)), Access.FULL, 0, 1)
    with pytest.raises(LinkExhausted) as info:
        service.downloads.admit(token_of(shared.url))
    assert info.value.max_downloads == 2


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
    link = service.downloads.admit(token_of(shared.url))
    service.revoke(link.id)
    with pytest.raises(LinkRevoked):
        service.downloads.begin(link, Access.FULL, 5, 5)


def test_begin_race_lost(service: Service) -> None:
    """Two admitted requests for the last download: the second begin raises LinkExhausted."""
    shared = service.share("hello.txt", max_downloads=1)
    first, second = (service.downloads.admit(token_of(shared.url)) for _ in range(2))
    service.downloads.begin(first, Access.FULL, 5, 5)
    with pytest.raises(LinkExhausted):
        service.downloads.begin(second, Access.FULL, 5, 5)


def test_an_unfinished_download_is_given_back(service: Service) -> None:
    """end() of a FULL download that did not complete returns it and its unsent bytes."""
    shared = service.share("hello.txt", max_downloads=1)
    link = service.downloads.admit(token_of(shared.url))
    ticket = service.downloads.begin(link, Access.FULL, 5, 5)
    service.downloads.end(ticket, sent=2, completed=False)
    record = service.link(link.id).link
    assert (record.downloads, record.bytes_served) == (0, 2)
    service.downloads.begin(service.downloads.admit(token_of(shared.url)), Access.FULL, 5, 5)
