"""The contract every store keeps, run against SQLite and a real redis-server alike."""

from __future__ import annotations

import random
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from sesame.models import DownloadEnd, DownloadEvent, DownloadStart, Link, Outcome, Refusal
from sesame.store import Store, open_store

NOW = 1_800_000_000
DAY = 86400
TODAY = NOW // DAY
FILES = ["a.txt", "b.zip", "芝麻.pdf"]


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


def start(
    link_id: str = "L1",
    nbytes: int = 10,
    counted: bool = True,
    byte_cap: int | None = None,
    *,
    now: int = NOW,
    budget: int | None = None,
    cap: int | None = None,
    slot: str | None = None,
    row: DownloadEvent | None = None,
) -> DownloadStart:
    """A download's start with a lease of a minute and, unless given, a lease id of its own;
    with ``row``, one settled at once."""
    lease = slot or secrets.token_hex(6)
    event = row or DownloadEvent(link_id, now, "1.2.3.4", "t", 200, nbytes, Outcome.COMPLETED)
    return DownloadStart(
        link_id,
        now,
        nbytes,
        counted,
        byte_cap,
        now // DAY,
        budget,
        lease,
        now + 60,
        cap,
        event,
        settled=row is not None,
    )


def end(
    slot: str,
    extra_bytes: int = 0,
    uncount: bool = False,
    row: DownloadEvent | None = None,
    link_id: str = "L1",
    day: int = TODAY,
    final: bool = False,
) -> DownloadEnd:
    return DownloadEnd(
        link_id, extra_bytes, uncount, day, slot, row, completed=not uncount, final=final
    )


def state(store: Store, link_id: str = "L1") -> tuple[Link | None, dict[int, int], int]:
    """All that beginning a download may change: the link, today's bytes, leases held."""
    return store.get_link(link_id), store.egress(TODAY, TODAY), store.count_slots(NOW)


def race(threads: int, attempt: Callable[[int], bool]) -> int:
    """How many of ``threads`` threads, let go at once, win their ``attempt``."""
    wins: list[bool] = []
    barrier = threading.Barrier(threads)

    def run(number: int) -> None:
        barrier.wait()
        wins.append(attempt(number))

    racers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    return wins.count(True)


def test_a_download_takes_its_link_bytes_day_and_place_at_once(store: Store) -> None:
    """begin_download grows the link's downloads and bytes, the day's bytes, and holds a
    lease; a download of 0 bytes still takes a place."""
    store.add_link(link())
    assert store.begin_download(start(nbytes=100)) is None
    record, served, held = state(store)
    assert (record.downloads, record.bytes_served) == (1, 100)  # type: ignore[union-attr]
    assert (served, held) == ({TODAY: 100}, 1)
    assert store.begin_download(start(nbytes=0, counted=False)) is None
    assert state(store)[1:] == ({TODAY: 100}, 2)


def test_counted_downloads_stop_at_the_limit(store: Store) -> None:
    """begin_download takes downloads up to max_downloads and then refuses: LINK."""
    store.add_link(link(max_downloads=2))
    results = [store.begin_download(start()) for _ in range(3)]
    assert results == [None, None, Refusal.LINK]
    assert store.get_link("L1").downloads == 2  # type: ignore[union-attr]


def test_uncounted_downloads_pass_a_used_up_link(store: Store) -> None:
    """A resumption (counted=False) is not stopped by the download limit."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download(start()) is None
    assert store.begin_download(start(counted=False)) is None
    assert store.get_link("L1").downloads == 1  # type: ignore[union-attr]


def test_revoked_or_unknown_links_begin_nothing(store: Store) -> None:
    """begin_download refuses a revoked link and an unknown id (LINK), and takes neither
    bytes nor a place for them."""
    store.add_link(link())
    store.revoke_link("L1", NOW)
    before = state(store)
    assert store.begin_download(start()) is Refusal.LINK
    assert store.begin_download(start("nope")) is Refusal.LINK
    assert state(store) == before
    assert store.get_link("L1").downloads == 0  # type: ignore[union-attr]


def test_the_byte_cap_holds(store: Store) -> None:
    """bytes_served never passes byte_cap; a refused begin reserves nothing."""
    store.add_link(link())
    assert store.begin_download(start(nbytes=60, counted=False, byte_cap=100)) is None
    before = state(store)
    assert store.begin_download(start(nbytes=50, counted=False, byte_cap=100)) is Refusal.LINK
    assert state(store) == before
    assert store.begin_download(start(nbytes=40, counted=False, byte_cap=100)) is None
    assert store.get_link("L1").bytes_served == 100  # type: ignore[union-attr]


def test_the_first_start_is_remembered(store: Store) -> None:
    """started_at is set by the first begin_download and kept afterwards."""
    store.add_link(link())
    store.begin_download(start(nbytes=1, now=NOW + 3))
    store.begin_download(start(nbytes=1, now=NOW + 7))
    assert store.get_link("L1").started_at == NOW + 3  # type: ignore[union-attr]


def test_refusals_come_in_order_and_change_nothing(store: Store) -> None:
    """The budget is checked first, then the cap, then the link; each refusal leaves the
    link, the day's bytes and the leases as they were."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download(start(nbytes=100)) is None  # the last download, 1 place
    before = state(store)
    assert store.begin_download(start(budget=100, cap=1)) is Refusal.BUDGET
    assert store.begin_download(start(budget=110, cap=1)) is Refusal.BUSY
    assert store.begin_download(start(budget=110, cap=2)) is Refusal.LINK
    assert state(store) == before


def test_a_download_settled_at_once_is_logged_and_holds_no_place(store: Store) -> None:
    """begin_download with a log row takes the link's download and bytes and the day's
    bytes, logs the row in the same trip, and holds no lease; a full cap still refuses it,
    and then nothing is logged."""
    store.add_link(link(max_downloads=3))
    row = event("L1", NOW + 1)
    assert store.begin_download(start(nbytes=100, cap=1, row=row)) is None
    record, served, held = state(store)
    assert (record.downloads, record.bytes_served) == (1, 100)  # type: ignore[union-attr]
    assert (served, held) == ({TODAY: 100}, 0)
    assert store.list_events("L1") == [row]
    assert store.begin_download(start(nbytes=5, slot="s1")) is None  # streamed: holds a place
    before = state(store)
    assert store.begin_download(start(nbytes=100, cap=1, row=event("L1", NOW + 2))) is Refusal.BUSY
    assert state(store) == before and store.list_events("L1") == [row]


def test_ending_settles_bytes_and_gives_back(store: Store) -> None:
    """end_download returns unsent bytes to the link and the day and, with uncount, the
    download; it drops the lease; nothing goes below 0."""
    store.add_link(link(max_downloads=1))
    store.begin_download(start(nbytes=100, slot="s1"))
    store.end_download(end("s1", -70, uncount=True))
    record, served, held = state(store)
    assert (record.downloads, record.bytes_served) == (0, 30)  # type: ignore[union-attr]
    assert (served, held) == ({TODAY: 30}, 0)
    store.end_download(end("s1", -500, uncount=True))
    record, served, held = state(store)
    assert (record.downloads, record.bytes_served) == (0, 0)  # type: ignore[union-attr]
    assert (served, held) == ({}, 0)


def test_ending_with_its_log_row(store: Store) -> None:
    """end_download with an event settles and adds the event, both at once."""
    store.add_link(link(max_downloads=1))
    store.begin_download(start(nbytes=100, slot="s1"))
    row = event("L1", NOW + 1)
    store.end_download(end("s1", -70, True, row))
    record = store.get_link("L1")
    assert (record.downloads, record.bytes_served) == (0, 30)  # type: ignore[union-attr]
    assert store.list_events("L1") == [replace(row, counted=False)]  # the lease says: given back


def test_a_download_sent_in_full_keeps_what_it_took(store: Store) -> None:
    """Ending with nothing to settle keeps the link's count and bytes and the day's bytes,
    and still logs the row and frees the place."""
    store.add_link(link(max_downloads=1))
    store.begin_download(start(nbytes=100, slot="s1"))
    row = event("L1", NOW + 1)
    store.end_download(end("s1", 0, False, row))
    record, served, held = state(store)
    assert (record.downloads, record.bytes_served) == (1, 100)  # type: ignore[union-attr]
    assert (served, held) == ({TODAY: 100}, 0)
    assert store.list_events("L1") == [row]


def test_ending_a_vanished_link_settles_the_rest(store: Store) -> None:
    """An end for a link the store no longer has still settles the day, frees the place
    and logs the row."""
    store.add_link(link())
    store.begin_download(start(nbytes=100, slot="s1"))
    row = event("gone", NOW + 1)
    store.end_download(end("s1", -40, True, row, link_id="gone"))
    assert state(store)[1:] == ({TODAY: 60}, 0)
    assert store.list_events("gone") == [replace(row, counted=False)]
    assert store.get_link("gone") is None


def test_racing_threads_never_pass_the_limit(store: Store) -> None:
    """Forty threads racing for a limit of five get exactly five downloads."""
    store.add_link(link(max_downloads=5))
    assert race(40, lambda _: store.begin_download(start(nbytes=1)) is None) == 5
    record, served, held = state(store)
    assert (record.downloads, served, held) == (5, {TODAY: 5}, 5)  # type: ignore[union-attr]


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
    """A download over the cap is refused (BUSY) and changes nothing; ending one frees its
    place; without a cap a download is counted but never refused."""
    store.add_link(link())
    assert store.begin_download(start(slot="a", cap=2)) is None
    assert store.begin_download(start(slot="b", cap=2)) is None
    before = state(store)
    assert store.begin_download(start(slot="c", cap=2)) is Refusal.BUSY
    assert state(store) == before
    store.end_download(end("a"))
    assert store.begin_download(start(slot="c", cap=2)) is None
    assert store.begin_download(start(slot="d")) is None
    assert store.count_slots(NOW) == 3


def test_lapsed_slots_free_their_place(store: Store) -> None:
    """A lease not renewed (its process died) stops counting once it lapses; a renewed one
    holds on."""
    store.add_link(link())
    assert store.begin_download(start(slot="dead", cap=2)) is None
    assert store.begin_download(start(slot="alive", cap=2)) is None
    store.renew_slot("alive", NOW + 600)
    store.renew_slot("never-taken", NOW + 600)
    assert store.count_slots(NOW + 61) == 1
    assert store.begin_download(start(slot="new", cap=2, now=NOW + 61)) is None
    assert store.begin_download(start(slot="more", cap=2, now=NOW + 61)) is Refusal.BUSY


def test_slots_hold_under_a_race(store: Store) -> None:
    """Twenty threads racing for five places: exactly five get one, and only they take a
    download from the link."""
    store.add_link(link())
    assert race(20, lambda n: store.begin_download(start(slot=f"s{n}", cap=5)) is None) == 5
    assert store.count_slots(NOW) == 5
    assert store.get_link("L1").downloads == 5  # type: ignore[union-attr]


def test_egress_adds_up_per_day_within_the_budget(store: Store) -> None:
    """Downloads add their bytes to their day; one that would pass the budget is refused
    (BUDGET); one without a budget (a resumption) always fits; ending settles back, never
    below zero; egress lists the days that served something."""
    store.add_link(link())
    assert store.begin_download(start(nbytes=600, budget=1000, slot="a")) is None
    assert store.begin_download(start(nbytes=401, budget=1000)) is Refusal.BUDGET
    assert store.begin_download(start(nbytes=400, budget=1000)) is None
    assert store.begin_download(start(nbytes=50, counted=False)) is None
    store.end_download(end("a", -350))
    assert store.begin_download(start(nbytes=5, now=NOW + 86400)) is None
    store.end_download(end("b", -50, day=TODAY + 2))
    # A day later the two leases left open had lapsed: settled with nothing delivered.
    assert store.egress(TODAY - 1, TODAY + 2) == {TODAY: 250, TODAY + 1: 5}
    assert store.egress(TODAY + 1, TODAY + 1) == {TODAY + 1: 5}


def test_the_budget_holds_under_a_race(store: Store) -> None:
    """Twenty threads racing for a budget of five downloads' bytes: exactly five fit."""
    store.add_link(link())
    assert race(20, lambda _: store.begin_download(start(budget=50)) is None) == 5
    assert store.egress(TODAY, TODAY) == {TODAY: 50}
    assert store.get_link("L1").downloads == 5  # type: ignore[union-attr]


def test_a_links_speed_cap_is_kept(store: Store) -> None:
    """A link's rate comes back as it went in; a link without one has None."""
    capped = Link("L9", "a.txt", NOW, NOW + 600, rate=512_000)
    store.add_link(capped)
    store.add_link(link())
    assert store.get_link("L9") == capped
    assert store.get_link("L1").rate is None  # type: ignore[union-attr]


def test_a_lapsed_lease_is_settled_as_aborted_with_what_it_reported(store: Store) -> None:
    """A download whose gateway died (its lease lapsed) is given back by the next download
    begun: its count and the bytes it never reported, its row logged as aborted."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download(start(nbytes=100, slot="dead")) is None
    store.renew_slot("dead", NOW + 60, 30)
    assert store.begin_download(start(nbytes=100, now=NOW + 30)) is Refusal.LINK
    assert store.begin_download(start(nbytes=100, now=NOW + 61, slot="next")) is None
    record = store.get_link("L1")
    assert record is not None and (record.downloads, record.bytes_served) == (1, 130)
    (row,) = store.list_events()
    assert (row.outcome, row.bytes_sent, row.counted) == (Outcome.ABORTED, 30, False)
    assert store.count_slots(NOW + 61) == 1


def test_an_amended_row_takes_the_place_of_the_first(store: Store) -> None:
    """A download settled as it began that turned out aborted: its row is replaced, not
    doubled, and its download given back."""
    store.add_link(link(max_downloads=1))
    first = DownloadEvent("L1", NOW + 0.5, "1.2.3.4", "t", 200, 10, Outcome.COMPLETED, True)
    assert store.begin_download(start(row=first)) is None
    later = DownloadEvent("L1", NOW + 1.5, "1.2.3.4", "t", 200, 4, Outcome.ABORTED)
    store.end_download(DownloadEnd("L1", -6, True, TODAY, "", later, amends=first))
    assert store.list_events() == [later]
    assert store.list_events("L1") == [later]
    record = store.get_link("L1")
    assert record is not None and (record.downloads, record.bytes_served) == (0, 4)


@pytest.mark.parametrize(("sent", "completed", "counted"), [(10, True, 1), (4, False, 0)])
def test_a_reported_lease_is_settled_from_its_record(
    store: Store, sent: int, completed: bool, counted: int
) -> None:
    """A download reported by the server that sent it (nginx) is settled from its lease
    alone: kept if complete, given back if not, logged; an unknown lease changes nothing."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download(start(nbytes=10, slot="sent-by-nginx")) is None
    assert store.settle_lease("sent-by-nginx", sent, completed)
    assert not store.settle_lease("sent-by-nginx", sent, completed)
    record = store.get_link("L1")
    assert record is not None and (record.downloads, record.bytes_served) == (counted, sent)
    (row,) = store.list_events()
    expected = Outcome.COMPLETED if completed else Outcome.ABORTED
    assert (row.outcome, row.bytes_sent, row.counted) == (expected, sent, bool(counted))
    assert store.count_slots(NOW) == 0


def test_pieces_of_one_session_count_once(store: Store) -> None:
    """A client's concurrent requests that would each count (a download manager's segments
    reaching the end) share its session: the first counts, the others join it even on a
    used-up link; when the counted one ends unfinished its count passes to one in flight."""
    store.add_link(link(max_downloads=1))
    first = replace(start(slot="a"), session="S", piece=True)
    assert store.begin_download(first) is None
    assert store.begin_download(replace(start(slot="b"), session="S", piece=True)) is None
    assert store.begin_download(replace(start(slot="c"), session="T", piece=True)) is Refusal.LINK
    store.end_download(end("a", -10, True))  # the first connection is dropped
    assert state(store)[0].downloads == 1  # type: ignore[union-attr]
    store.end_download(end("b", row=event("L1", NOW + 2)))  # the last piece arrives
    assert state(store)[0].downloads == 1  # type: ignore[union-attr]
    assert [row.counted for row in store.list_events()] == [True]  # it holds the count now


def test_a_completed_piece_keeps_the_sessions_count(store: Store) -> None:
    """Once a piece of a session holding the file's last byte has been received, the counted
    request of that session keeps its count even if it ends unfinished; a probe short of the
    end keeps nothing; a session with nothing received gives back."""
    store.add_link(link(max_downloads=2))
    assert store.begin_download(replace(start(slot="p", counted=False), session="S")) is None
    assert store.begin_download(replace(start(slot="a"), session="S", piece=True)) is None
    store.end_download(end("p"))  # a completed probe of the first byte
    assert store.begin_download(replace(start(slot="b"), session="S", piece=True)) is None
    store.end_download(end("b", final=True))
    store.end_download(end("a", -10, True))
    assert state(store)[0].downloads == 1  # type: ignore[union-attr]
    assert store.begin_download(replace(start(slot="c"), session="T", piece=True)) is None
    store.end_download(end("c", -10, True))
    assert state(store)[0].downloads == 1  # type: ignore[union-attr]


def test_a_key_is_seen_once(store: Store) -> None:
    """seen_once: True the first time, False while remembered, for other keys True."""
    assert store.seen_once("nonce-1", NOW, 600) is True
    assert store.seen_once("nonce-1", NOW + 1, 600) is False
    assert store.seen_once("nonce-2", NOW + 1, 600) is True


def test_a_key_is_seen_once_across_threads(store: Store) -> None:
    """Eight threads offering one key at once: exactly one is first."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        firsts = list(pool.map(lambda _: store.seen_once("same", NOW, 600), range(8)))
    assert firsts.count(True) == 1


def test_the_store_answers_a_ping(store: Store) -> None:
    """ping() returns when the store works."""
    store.ping()


def test_a_huge_user_agent_is_kept_cut(store: Store) -> None:
    """A 4 MiB User-Agent is logged as its first MAX_USER_AGENT characters, in any store."""
    from sesame.models import MAX_USER_AGENT

    store.add_link(link())
    event = DownloadEvent("L1", NOW, "1.2.3.4" * 100, "A" * 4 * 1024 * 1024, 200, 0, Outcome.HEAD)
    store.add_event(event)
    (kept,) = store.list_events("L1")
    assert kept.user_agent is not None and len(kept.user_agent) == MAX_USER_AGENT
    assert kept.user_agent.startswith("AAAA") and kept.user_agent.endswith("…")
    assert kept.client_ip is not None and len(kept.client_ip) <= 64


def test_rows_noted_are_written_in_order_by_the_next_flush(store: Store) -> None:
    """note_event may hold a row back (SQLite does), never lose or reorder it: once the
    store flushed, every row noted is there, in the order noted, after those added before."""
    store.add_link(link())
    store.add_event(event("L1", NOW, Outcome.COMPLETED))
    for number in range(3):
        store.note_event(event("L1", NOW + 1 + number, Outcome.HEAD))
    store.flush()
    listed = store.list_events("L1")
    assert [(row.at, row.outcome) for row in reversed(listed)] == [
        (NOW, Outcome.COMPLETED),
        (NOW + 1, Outcome.HEAD),
        (NOW + 2, Outcome.HEAD),
        (NOW + 3, Outcome.HEAD),
    ]


def test_a_piece_soon_after_its_sessions_download_arrived_joins_it(store: Store) -> None:
    """A piece that would count, begun by a client whose download of the link arrived a
    moment ago (a segment begun after the first connection finished), joins it; another
    client's is refused."""
    store.add_link(link(max_downloads=1))
    assert store.begin_download(replace(start(slot="a"), session="S", piece=True)) is None
    store.end_download(end("a", row=event("L1", NOW + 1)))
    assert (
        store.begin_download(replace(start(slot="b", now=NOW + 2), session="S", piece=True)) is None
    )
    assert (
        store.begin_download(replace(start(slot="c", now=NOW + 2), session="T", piece=True))
        is Refusal.LINK
    )
    assert state(store)[0].downloads == 1  # type: ignore[union-attr]


def test_link_counts_and_files_follow_every_change(store: Store) -> None:
    """link_counts and link_files say what the records say after each of 400 random
    changes of what decides a status: links added or issued, downloads that use a link
    up, ones given back (ended unfinished, lapsed, settled from a lease unfinished),
    revocation, time passing, and retention forgetting links."""
    rng = random.Random(7)
    now, made, leases = NOW, 0, []

    def new_link() -> Link:
        nonlocal made
        made += 1
        lifetime, limit = rng.choice([60, 600, 3600]), rng.choice([None, 1, 2])
        return Link(f"L{made}", rng.choice(FILES), now, now + lifetime, limit, "bob")

    for _ in range(400):
        ids = [item.id for item in store.list_links()]
        action = rng.choice(["add", "issue", "begin", "settled", "end", "settle", "revoke"])
        if action == "add" or not ids:
            store.add_link(new_link())
        elif action == "issue":
            store.issue_link("rule", rng.choice(["ann", "bob"]), new_link(), 120)
        elif action in ("begin", "settled"):
            link_id, slot = rng.choice(ids), secrets.token_hex(4)
            row = event(link_id, now) if action == "settled" else None
            if store.begin_download(start(link_id, now=now, slot=slot, row=row)) is None:
                leases += [] if row else [(link_id, slot)]
        elif action in ("end", "settle") and leases:
            link_id, slot = leases.pop(rng.randrange(len(leases)))
            if action == "end":
                store.end_download(end(slot, 0, rng.random() < 0.5, link_id=link_id))
            else:
                store.settle_lease(slot, rng.choice([0, 10]), True)
        elif action == "revoke":
            store.revoke_link(rng.choice(ids), now)
        now += rng.randrange(0, 90)  # leases last a minute: some lapse
        if rng.random() < 0.05:
            store.drop_ended(now - 300, 3)
        records = store.list_links()
        assert store.link_counts(now) == Counter(str(item.status(now)) for item in records)
        assert store.link_files() == sorted({item.file for item in records})
