"""The owner's actions, over real SQLite and real files (a download's steps: test_downloads)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sesame.errors import (
    FileMissing,
    InvalidInput,
    LinkNotFound,
    UploadRejected,
)
from sesame.models import LinkStatus
from sesame.service import ID_ALPHABET, Service, new_id
from sesame.settings import Settings
from tests.support import NOW, FakeClock, take


def test_share_defaults(service: Service) -> None:
    """A link starts now, lives for the default lifetime, and its URL starts with PUBLIC_URL."""
    shared = service.share("hello.txt")
    link = shared.link
    assert (link.file, link.created_at, link.expires_at) == ("hello.txt", NOW, NOW + 600)
    assert (link.max_downloads, link.recipient, link.note, link.downloads) == (None,) * 3 + (0,)
    assert shared.url.startswith("http://sesame.test/d/")
    assert service.store.get_link(link.id) == link


def test_share_options(service: Service) -> None:
    """Lifetime, limit, recipient and note are kept; the file name is normalised."""
    link = service.share("./sub//nested.bin", "2h", 3, " 小明 ", "demo").link
    assert (link.file, link.lifetime, link.max_downloads) == ("sub/nested.bin", 7200, 3)
    assert (link.recipient, link.note) == ("小明", "demo")


def test_share_strips_control_characters(service: Service) -> None:
    """Control characters in a recipient or note are dropped; an empty result is None."""
    link = service.share("hello.txt", recipient="a\x1b[31mb\n", note="\x00\x07").link
    assert (link.recipient, link.note) == ("a[31mb", None)


def test_ids_are_random_and_plain() -> None:
    """Link ids are 11 letters and digits, and do not repeat."""
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 11 and set(i) <= set(ID_ALPHABET) for i in ids)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lifetime": "8d"}, "longest lifetime allowed is 7d"),
        ({"lifetime": "soon"}, "not a lifetime"),
        ({"lifetime": "0s"}, "longer than zero"),
        ({"max_downloads": 0}, "at least 1"),
        ({"max_downloads": -1}, "at least 1"),
        ({"recipient": "x" * 501}, "recipient is longer than 500"),
        ({"note": "x" * 501}, "note is longer than 500"),
    ],
)
def test_share_refuses(service: Service, kwargs: dict[str, Any], message: str) -> None:
    """Bad options are InvalidInput with a sentence saying what is wrong; nothing is stored."""
    with pytest.raises(InvalidInput, match=message):
        service.share("hello.txt", **kwargs)
    assert service.store.list_links() == []


def test_share_exactly_the_maximum(service: Service) -> None:
    """The longest lifetime itself is allowed, and 500 characters of recipient too."""
    assert service.share("hello.txt", "7d", recipient="x" * 500).link.lifetime == 7 * 86400


def test_share_missing_file(service: Service) -> None:
    """Sharing a file that is not in the folder raises FileMissing and stores nothing."""
    with pytest.raises(FileMissing):
        service.share("../outside.txt")
    assert service.store.list_links() == []


def test_url_shown_again_is_the_same(service: Service) -> None:
    """The URL is minted again from the record: listing shows the URL share gave."""
    shared = service.share("hello.txt")
    assert service.link(shared.link.id).url == shared.url
    assert [s.url for s in service.links()] == [shared.url]


def test_revoke(service: Service, clock: FakeClock) -> None:
    """Revoking stamps the clock's time on the link."""
    link = service.share("hello.txt").link
    clock.advance(5)
    assert service.revoke(link.id).revoked_at == NOW + 5


def test_revoke_unknown(service: Service) -> None:
    """Revoking an unknown id raises LinkNotFound carrying the id."""
    with pytest.raises(LinkNotFound) as info:
        service.revoke("nope")
    assert info.value.link_id == "nope"


def test_link_unknown(service: Service) -> None:
    """Asking for an unknown link raises LinkNotFound."""
    with pytest.raises(LinkNotFound):
        service.link("nope")


def test_links_filtering(service: Service, clock: FakeClock) -> None:
    """links() shows only active links; include_inactive adds expired, revoked, used-up."""
    expired = service.share("hello.txt", "1m").link
    revoked = service.share("hello.txt").link
    used_up = service.share("hello.txt", max_downloads=1).link
    clock.advance(30)
    active = service.share("hello.txt").link
    service.revoke(revoked.id)
    take(service, used_up, 1)
    clock.advance(31)
    assert [s.link.id for s in service.links()] == [active.id]
    everything = {s.link.id: s.link.status(clock()) for s in service.links(include_inactive=True)}
    assert everything == {
        active.id: LinkStatus.ACTIVE,
        expired.id: LinkStatus.EXPIRED,
        revoked.id: LinkStatus.REVOKED,
        used_up.id: LinkStatus.USED_UP,
    }


def test_upload_respects_the_setting(settings: Settings, clock: FakeClock) -> None:
    """upload() uses SESAME_MAX_UPLOAD_SIZE as its limit."""
    small = Service.from_settings(settings.model_copy(update={"max_upload_size": 4}), clock)
    assert small.upload("four.txt", io.BytesIO(b"1234")).size == 4
    with pytest.raises(UploadRejected):
        small.upload("five.txt", io.BytesIO(b"12345"))
    assert [f.name for f in small.files()].count("four.txt") == 1
    small.store.close()
