"""The contract every store keeps, run against SQLite and a real redis-server alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesame.models import DownloadEvent, Link, Outcome
from sesame.store import Store, open_store

NOW = 1_800_000_000


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}", retention=86400)
    else:
        opened = open_store(request.getfixturevalue("redis_url"), retention=86400)
    yield opened
    opened.close()


def link(link_id: str = "L1", max_downloads: int | None = None, created: int = NOW) -> Link:
    return Link(link_id, "a.txt", created, created + 600, max_downloads, "bob", "hi")


def event(link_id: str, at: float, outcome: Outcome = Outcome.COMPLETED) -> DownloadEvent:
    counted = outcome is Outcome.COMPLETED
    return DownloadEvent(link_id, at, "127.0.0.1", "curl/8", 200, 10, outcome, counted)


def test_a_link_comes_back_as_it_went_in(store: Store) -> None:
    """add_link then get_link returns an equal record; an unknown id gives None."""
    store.add_link(link())
    assert store.get_link("L1") == link()
    assert store.get_link("nope") is None


def test_links_are_listed_newest_first(store: Store) -> None:
    """list_links orders by creation time, newest first."""
    for number in range(3):
        store.add_link(link(f"L{number}", created=NOW + number))
    assert [item.id for item in store.list_links()] == ["L2", "L1", "L0"]


def test_revoking_keeps_the_first_time(store: Store) -> None:
    """revoke_link sets revoked_at once; revoking again keeps it; unknown ids give None."""
    store.add_link(link())
    assert store.revoke_link("L1", NOW + 5).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.revoke_link("L1", NOW + 9).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.revoke_link("nope", NOW) is None


def test_counted_downloads_stop_at_the_limit(store: Store) -> None:
    """begin_download takes downloads up to max_downloads and then refuses."""
    store.add_link(link(max_downloads=2))
    results = [store.begin_download("L1", NOW, 10, True, None) for _ in range(3)]
    assert results == [True, True, False]
    assert store.get_link("L1").downloads == 2  # type: ignore[union-attr]


def test_uncounted_downloads_pass_a_used_up_link(store: Store) -> None:
    """A resumption (counted=False) is not stopped by the download limit."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download("L1", NOW, 10, True, None)
    assert store.begin_download("L1", NOW, 10, False, None)
    assert store.get_link("L1").downloads == 1  # type: ignore[union-attr]


def test_revoked_or_unknown_links_begin_nothing(store: Store) -> None:
    """begin_download refuses a revoked link and an unknown id, changing nothing."""
    store.add_link(link())
    store.revoke_link("L1", NOW)
    assert not store.begin_download("L1", NOW, 10, True, None)
    assert not store.begin_download("nope", NOW, 10, True, None)
    assert store.get_link("L1").downloads == 0  # type: ignore[union-attr]


def test_the_byte_cap_holds(store: Store) -> None:
    """bytes_served never passes byte_cap; a refused begin reserves nothing."""
    store.add_link(link())
    assert store.begin_download("L1", NOW, 60, False, 100)
    assert not store.begin_download("L1", NOW, 50, False, 100)
    assert store.begin_download("L1", NOW, 40, False, 100)
    assert store.get_link("L1").bytes_served == 100  # type: ignore[union-attr]


def test_the_first_start_is_remembered(store: Store) -> None:
    """started_at is set by the first begin_download and kept afterwards."""
    store.add_link(link())
    store.begin_download("L1", NOW + 3, 1, True, None)
    store.begin_download("L1", NOW + 7, 1, True, None)
    assert store.get_link("L1").started_at == NOW + 3  # type: ignore[union-attr]


def test_ending_settles_bytes_and_gives_back(store: Store) -> None:
    """end_download returns unsent bytes and, with uncount, the download; never below 0."""
    store.add_link(link(max_downloads=1))
    store.begin_download("L1", NOW, 100, True, None)
    store.end_download("L1", -70, uncount=True)
    record = store.get_link("L1")
    assert (record.downloads, record.bytes_served) == (0, 30)  # type: ignore[union-attr]
    store.end_download("L1", -500, uncount=True)
    record = store.get_link("L1")
    assert (record.downloads, record.bytes_served) == (0, 0)  # type: ignore[union-attr]


def test_ending_with_its_log_row(store: Store) -> None:
    """end_download_logged settles like end_download and adds the event, both at once."""
    store.add_link(link(max_downloads=1))
    store.begin_download("L1", NOW, 100, True, None)
    row = event("L1", NOW + 1)
    store.end_download_logged("L1", -70, True, row)
    record = store.get_link("L1")
    assert (record.downloads, record.bytes_served) == (0, 30)  # type: ignore[union-attr]
    assert store.list_events("L1") == [row]


def test_racing_threads_never_pass_the_limit(store: Store) -> None:
    """Forty threads racing for a limit of five get exactly five downloads."""
    store.add_link(link(max_downloads=5))
    wins: list[bool] = []
    barrier = threading.Barrier(40)

    def race() -> None:
        barrier.wait()
        wins.append(store.begin_download("L1", NOW, 1, True, None))

    threads = [threading.Thread(target=race) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 5
    assert store.get_link("L1").downloads == 5  # type: ignore[union-attr]


def test_events_are_listed_newest_first(store: Store) -> None:
    """list_events gives every row newest first, by link and with a limit."""
    store.add_link(link("A"))
    store.add_link(link("B"))
    for number in range(4):
        store.add_event(event("A" if number % 2 else "B", NOW + number))
    assert [e.at for e in store.list_events()] == [NOW + 3, NOW + 2, NOW + 1, NOW]
    assert [e.at for e in store.list_events("A")] == [NOW + 3, NOW + 1]
    assert [e.at for e in store.list_events(limit=1)] == [NOW + 3]
    assert store.list_events()[0] == event("A", NOW + 3)


# -- landing pages, keyword rules, issued links and API keys ------------------------------
# (Imported here so that this section only adds to the file.)

from sesame.models import ApiKey, Rule  # noqa: E402


def test_the_landing_flag_comes_back(store: Store) -> None:
    """A link made with a landing page keeps the flag; links without it read False."""
    with_page = Link("P1", "a.txt", NOW, NOW + 600, landing=True)
    store.add_link(with_page)
    store.add_link(link("P2"))
    assert store.get_link("P1") == with_page and store.get_link("P1").landing is True  # type: ignore[union-attr]
    assert store.get_link("P2").landing is False  # type: ignore[union-attr]


def test_an_issued_link_comes_back_within_the_cooldown(store: Store) -> None:
    """issue_link keeps the first link for one recipient until the cool-down has passed."""
    first = store.issue_link("rule:a", "openid-1", link("I1", created=NOW), cooldown=60)
    assert first.id == "I1" and store.get_link("I1") == first
    again = store.issue_link("rule:a", "openid-1", link("I2", created=NOW + 59), cooldown=60)
    assert again.id == "I1" and store.get_link("I2") is None
    later = store.issue_link("rule:a", "openid-1", link("I3", created=NOW + 60), cooldown=60)
    assert later.id == "I3" and store.get_link("I3") is not None


def test_issued_links_are_per_recipient_and_scope(store: Store) -> None:
    """Another recipient or another rule gets a link of its own."""
    store.issue_link("rule:a", "openid-1", link("J1"), cooldown=600)
    assert store.issue_link("rule:a", "openid-2", link("J2"), cooldown=600).id == "J2"
    assert store.issue_link("rule:b", "openid-1", link("J3"), cooldown=600).id == "J3"
    assert store.issue_link("rule:a", "openid-1", link("J4"), cooldown=600).id == "J1"


def test_no_cooldown_always_issues_a_new_link(store: Store) -> None:
    """With a cool-down of 0 every request gets a new link."""
    store.issue_link("rule:a", "openid-1", link("K1"), cooldown=0)
    assert store.issue_link("rule:a", "openid-1", link("K2"), cooldown=0).id == "K2"


def test_racing_requests_from_one_recipient_make_one_link(store: Store) -> None:
    """Twenty threads asking at once for one recipient all get the same, single link."""
    got: list[str] = []
    barrier = threading.Barrier(20)

    def ask(number: int) -> None:
        barrier.wait()
        got.append(store.issue_link("rule:a", "openid-1", link(f"R{number}"), 600).id)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 1 and len(got) == 20
    assert [item.id for item in store.list_links()] == [got[0]]


def rule(keyword: str = "芝麻开门", file: str = "a.txt", **options: object) -> Rule:
    return Rule(keyword, file, 600, cooldown=600, created_at=NOW, **options)  # type: ignore[arg-type]


def test_a_rule_comes_back_as_it_went_in(store: Store) -> None:
    """add_rule then get_rule by its key returns an equal rule; unknown keys give None."""
    full = rule("Open Sesame", max_downloads=2, template="{url}", landing=True)
    assert store.add_rule(full)
    assert store.get_rule("opensesame") == full
    assert store.get_rule("nope") is None


def test_a_rule_is_replaced_only_when_asked(store: Store) -> None:
    """A second rule with the same key is refused unless replace=True."""
    assert store.add_rule(rule(file="a.txt"))
    assert not store.add_rule(rule("芝麻 开门!", file="b.txt"))
    assert store.get_rule("芝麻开门").file == "a.txt"  # type: ignore[union-attr]
    assert store.add_rule(rule(file="b.txt"), replace=True)
    assert store.get_rule("芝麻开门").file == "b.txt"  # type: ignore[union-attr]


def test_rules_are_listed_by_key_and_removed(store: Store) -> None:
    """list_rules sorts by key; remove_rule returns the rule once, then None."""
    for keyword in ("b", "C", "a"):
        store.add_rule(rule(keyword))
    assert [item.keyword for item in store.list_rules()] == ["a", "b", "C"]
    assert store.remove_rule("c") == rule("C")
    assert store.remove_rule("c") is None
    assert [item.keyword for item in store.list_rules()] == ["a", "b"]


def api_key(key_id: str = "K1", created: int = NOW) -> ApiKey:
    return ApiKey(key_id, "bot", "ssk_abcd", f"digest-{key_id}", created)


def test_an_api_key_is_found_by_its_digest(store: Store) -> None:
    """find_api_key looks a key up by its SHA-256; unknown digests give None."""
    store.add_api_key(api_key())
    assert store.find_api_key("digest-K1") == api_key()
    assert store.find_api_key("digest-K2") is None


def test_api_keys_are_listed_newest_first_and_revoked_once(store: Store) -> None:
    """list_api_keys orders by creation; revoking keeps the first time; unknown ids give None."""
    for number in range(3):
        store.add_api_key(api_key(f"K{number}", NOW + number))
    assert [key.id for key in store.list_api_keys()] == ["K2", "K1", "K0"]
    assert store.revoke_api_key("K1", NOW + 5).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.revoke_api_key("K1", NOW + 9).revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.find_api_key("digest-K1").revoked_at == NOW + 5  # type: ignore[union-attr]
    assert store.revoke_api_key("nope", NOW) is None


def test_using_an_api_key_is_noted(store: Store) -> None:
    """touch_api_key records the last use; touching an unknown id changes nothing."""
    store.add_api_key(api_key())
    store.touch_api_key("K1", NOW + 30)
    store.touch_api_key("nope", NOW + 30)
    assert store.find_api_key("digest-K1").last_used_at == NOW + 30  # type: ignore[union-attr]
    assert len(store.list_api_keys()) == 1


def test_slots_stop_at_the_cap(store: Store) -> None:
    """take_slot refuses a lease over the cap and changes nothing; dropping one frees it."""
    assert store.take_slot("a", NOW, NOW + 60, 2)
    assert store.take_slot("b", NOW, NOW + 60, 2)
    assert not store.take_slot("c", NOW, NOW + 60, 2)
    assert store.count_slots(NOW) == 2
    store.drop_slot("a")
    assert store.take_slot("c", NOW, NOW + 60, 2)
    assert store.take_slot("d", NOW, NOW + 60, None)  # no cap: counted, never refused
    assert store.count_slots(NOW) == 3


def test_lapsed_slots_free_their_place(store: Store) -> None:
    """A lease not renewed (its process died) stops counting once it lapses; a renewed one
    holds on."""
    assert store.take_slot("dead", NOW, NOW + 60, 2)
    assert store.take_slot("alive", NOW, NOW + 60, 2)
    store.renew_slot("alive", NOW + 600)
    store.renew_slot("never-taken", NOW + 600)
    assert store.count_slots(NOW + 61) == 1
    assert store.take_slot("new", NOW + 61, NOW + 121, 2)
    assert not store.take_slot("more", NOW + 61, NOW + 121, 2)


def test_slots_hold_under_a_race(store: Store) -> None:
    """Twenty threads racing for five places: exactly five get one."""
    results: list[bool] = []
    lock = threading.Lock()

    def take(number: int) -> None:
        taken = store.take_slot(f"s{number}", NOW, NOW + 60, 5)
        with lock:
            results.append(taken)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 5 and store.count_slots(NOW) == 5


def test_egress_adds_up_per_day_within_the_budget(store: Store) -> None:
    """add_egress sums bytes per day, refuses what would pass the budget, settles back
    never below zero; egress lists the days that served something."""
    assert store.add_egress(100, 600, 1000)
    assert not store.add_egress(100, 401, 1000)
    assert store.add_egress(100, 400, 1000)
    assert store.add_egress(100, -300, None)
    assert store.add_egress(101, 5, None)
    assert store.add_egress(102, -50, None)
    assert store.egress(99, 102) == {100: 700, 101: 5}
    assert store.egress(101, 101) == {101: 5}


def test_a_links_speed_cap_is_kept(store: Store) -> None:
    """A link's rate comes back as it went in; a link without one has None."""
    capped = Link("L9", "a.txt", NOW, NOW + 600, rate=512_000)
    store.add_link(capped)
    store.add_link(link())
    assert store.get_link("L9") == capped
    assert store.get_link("L1").rate is None  # type: ignore[union-attr]
