"""The Links page: every link with its state; revoking asks first and takes effect at once."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from sesame.errors import LinkRevoked
from sesame.models import Link, LinkStatus
from sesame.service import Service
from tests.support import ZONE, texts


@pytest.fixture(params=["sqlite", "redis"])
def each_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard and the test's own Service on SQLite, then on a real redis-server."""
    if request.param == "redis":
        monkeypatch.setenv("SESAME_STORE_URL", request.getfixturevalue("redis_url"))


@pytest.fixture
def seeded(service: Service) -> dict[str, Link]:
    """Four links, one in each state, by state."""
    now = int(time.time())
    active = service.share("芝麻 开门.txt", "1h", 3, "Alice", "photos").link
    revoked = service.revoke(service.share("welcome.txt").link.id)
    expired = Link("expired0001", "welcome.txt", now - 7200, now - 3600, recipient="Bob")
    used_up = Link("usedup00001", "welcome.txt", now - 60, now + 540, max_downloads=1, downloads=1)
    service.store.add_link(expired)
    service.store.add_link(used_up)
    return {"active": active, "revoked": revoked, "expired": expired, "used up": used_up}


def links_page(at: AppTest) -> AppTest:
    return at.switch_page("links.py").run()


def rows(at: AppTest) -> list[dict[str, object]]:
    return at.dataframe[0].value.to_dict("records")  # type: ignore[no-any-return]


def choose(at: AppTest, link_id: str) -> AppTest:
    """Taps the link's row in the table, as the owner does."""
    position = [row["id"] for row in rows(at)].index(link_id)
    selection = {"rows": [position], "columns": [], "cells": []}
    at.session_state["links_table_wide_rows"] = {"selection": selection}
    return at.run()


def test_every_link_with_its_state(
    each_store: None, signed_in: AppTest, seeded: dict[str, Link]
) -> None:
    """Each link shows file, recipient, times in local time, downloads / limit and status."""
    links_page(signed_in)
    table = {row["id"]: row for row in rows(signed_in)}
    assert {row["status"] for row in table.values()} == set(seeded)
    for status, link in seeded.items():
        assert table[link.id]["status"] == status
    active = table[seeded["active"].id]
    created = datetime.fromtimestamp(seeded["active"].created_at, ZoneInfo(ZONE))
    assert active["file"] == "芝麻 开门.txt" and active["recipient"] == "Alice"
    assert active["created"] == f"{created:%Y-%m-%d %H:%M}"
    assert active["downloads"] == "0 / 3" and active["note"] == "photos"
    assert str(active["time left"]).startswith(("59 minutes", "1 hour"))
    assert table[seeded["used up"].id]["downloads"] == "1 / 1"
    assert table[seeded["revoked"].id]["downloads"] == "0 / ∞"
    assert table[seeded["expired"].id]["time left"] == ""


def test_filter_by_status_and_file(
    each_store: None, signed_in: AppTest, seeded: dict[str, Link]
) -> None:
    """The status and file filters narrow the table; none chosen means all."""
    links_page(signed_in)
    signed_in.pills(key="links_status").set_value([LinkStatus.EXPIRED, LinkStatus.USED_UP]).run()
    assert {row["id"] for row in rows(signed_in)} == {
        seeded["expired"].id,
        seeded["used up"].id,
    }
    signed_in.pills(key="links_status").set_value([]).run()
    signed_in.multiselect(key="links_file").set_value(["芝麻 开门.txt"]).run()
    assert [row["id"] for row in rows(signed_in)] == [seeded["active"].id]


def test_status_filter_shows_counts(
    each_store: None, signed_in: AppTest, seeded: dict[str, Link]
) -> None:
    """Each status option says how many links are in it."""
    links_page(signed_in)
    labels = signed_in.pills(key="links_status").options
    assert [label.split("· ")[-1] for label in labels] == ["1", "1", "1", "1"]


def test_revoke_asks_then_the_gateway_refuses(
    signed_in: AppTest, service: Service, seeded: dict[str, Link]
) -> None:
    """Revoke needs a confirmation; once given, the next request for the link is refused."""
    link = seeded["active"]
    links_page(signed_in)
    choose(signed_in, link.id)
    url = signed_in.main.code[0].value
    signed_in.button(key="links_revoke").click().run()
    assert "Revoke the link to “芝麻 开门.txt” for Alice?" in texts(signed_in.warning)[0]
    assert service.link(link.id).link.revoked_at is None
    signed_in.button(key="links_revoke_confirm").click().run()
    assert service.link(link.id).link.revoked_at is not None
    assert "Revoked the link to “芝麻 开门.txt”" in texts(signed_in.success)[0]
    with pytest.raises(LinkRevoked):
        service.downloads.admit(
            url.rsplit("/", 1)[-1]
        )  # what the gateway does with the next request
    assert next(r for r in rows(signed_in) if r["id"] == link.id)["status"] == "revoked"


def test_revoke_can_be_called_off(
    signed_in: AppTest, service: Service, seeded: dict[str, Link]
) -> None:
    """ "Keep it" leaves the link working."""
    links_page(signed_in)
    choose(signed_in, seeded["active"].id)
    signed_in.button(key="links_revoke").click().run()
    signed_in.button(key="links_revoke_cancel").click().run()
    assert service.link(seeded["active"].id).link.revoked_at is None
    assert signed_in.button(key="links_revoke") and not signed_in.warning


@pytest.mark.parametrize("state", ["revoked", "expired", "used up"])
def test_only_active_links_can_be_revoked(
    signed_in: AppTest, seeded: dict[str, Link], state: str
) -> None:
    """A link the gateway already refuses offers no revoke button."""
    links_page(signed_in)
    choose(signed_in, seeded[state].id)
    assert not [b for b in signed_in.button if b.key == "links_revoke"]
    assert f"This link is {state}" in signed_in.main.caption[-1].value


def test_no_links_yet(signed_in: AppTest) -> None:
    """With no links, the page says where to make one."""
    links_page(signed_in)
    assert "No links yet" in signed_in.info[0].value


def test_the_dashboard_sweeps_in_the_background(app: AppTest, service: Service) -> None:
    """Once signed in, a rerun starts a retention sweep off the page's thread: a link that
    ended more than SESAME_RETENTION ago is gone, a recent one stays."""
    import threading
    import time

    from admin_ui import signin
    from sesame.models import Link

    now = int(time.time())
    service.store.add_link(Link("old00000001", "welcome.txt", now - 60 * 86400, now - 59 * 86400))
    service.store.add_link(Link("new00000001", "welcome.txt", now - 60, now + 600))
    app.session_state[signin.SIGNED_IN] = True
    app.run()
    for thread in threading.enumerate():
        if thread.name == "sesame-retention":
            thread.join(timeout=10)
    assert [link.id for link in service.store.list_links()] == ["new00000001"]
