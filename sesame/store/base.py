"""What every store offers. The gateway, the dashboard and the CLI speak only this."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

from sesame.activity import DayFile, LogFilter, LogRow, Totals
from sesame.models import ApiKey, DownloadEnd, DownloadEvent, DownloadStart, Link, Refusal, Rule

T = TypeVar("T")
R = TypeVar("R")


class Each(list[R | BaseException]):
    """What a store gives for each of several requests at once: each one's answer, or the
    error it alone met (store.guard maps those as it maps one raised)."""


def each(step: Callable[[T], R], items: Iterable[T]) -> Each[R]:
    """``step`` of every item in turn, each one's error kept in its place."""
    answers: Each[R] = Each()
    for item in items:
        try:
            answers.append(step(item))
        except Exception as exc:
            answers.append(exc)
    return answers


class Store(Protocol):
    """Link records, their download counters and the download log; keyword rules and the
    links issued for them; API keys.

    Every method is safe to call from several threads and several processes at once;
    ``begin_download`` and ``end_download`` are each one atomic trip to the store, so the
    limits hold however many gateways race for them.
    """

    def add_link(self, link: Link) -> None:
        """Keep a new link record."""

    def get_link(self, link_id: str) -> Link | None:
        """The record of ``link_id``, or None."""

    def list_links(self) -> list[Link]:
        """Every link record, newest first."""

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        """Mark the link revoked at ``at`` (kept if it already was); None if unknown."""

    def begin_download(self, start: DownloadStart) -> Refusal | None:
        """Atomically begin a download, all or nothing.

        In this order, the first that fails is the refusal, and then nothing changes:
        BUDGET if ``start.budget`` is set and the day's bytes plus ``nbytes`` would pass it;
        BUSY if ``start.cap`` is set and that many leases are held at ``now``; LINK unless
        the link exists, is not revoked, has a download left under its limit if
        ``counted``, and its bytes served plus ``nbytes`` stay within ``byte_cap``.
        Otherwise: the link's bytes served and (if ``counted``) downloads grow, its
        ``started_at`` is set if it was not, the day's bytes grow by ``nbytes``, and either
        ``start.event`` is appended to the log (``settled``) or ``slot_id`` is held until
        ``until``, keeping what settling it needs.

        First of all, in the same trip, a few leases that lapsed before ``now`` (downloads
        whose gateway died) are settled as by ``end_download``: the bytes last reported by
        ``renew_slot`` kept, the download given back if it was counted, and its row logged
        as aborted.
        """

    def begin_downloads(self, starts: list[DownloadStart]) -> Each[Refusal | None]:
        """``begin_download`` of each of ``starts``, each atomic and with its own answer as
        if begun alone, in as few trips as the store can (the SQLite store: one
        transaction while no other thread's work is queued). A store may let in at once a
        download through a link with no limit, settled as it begins and with no budget or
        cap to heed, once the link was found open, and write it a moment later (the SQLite
        store: sesame.store.held, while its last transaction did not fail); ``flush``
        writes it now."""

    def end_download(self, end: DownloadEnd) -> None:
        """Settle a download begun with ``begin_download``, in one trip: add ``extra_bytes``
        to the link's bytes served and to the day's bytes (neither below 0); if
        ``uncount``, give the link's download back (never below 0); drop the lease; and
        append ``event`` to the log, if given, or put it in the place of ``amends``. An
        unknown link is skipped; the rest holds."""

    def add_event(self, event: DownloadEvent) -> None:
        """Append one row to the download log."""

    def note_event(self, event: DownloadEvent) -> None:
        """``add_event`` for a request already answered, which nothing waits on: a row the
        store may hold back and write soon after (as ``begin_downloads`` holds some)."""

    def list_events(
        self, link_id: str | None = None, limit: int | None = None
    ) -> list[DownloadEvent]:
        """Download log rows, newest first, optionally for one link and at most ``limit``."""

    def issue_link(self, scope: str, recipient: str, link: Link, cooldown: int) -> Link:
        """The link ``recipient`` was issued in ``scope`` (a keyword rule) less than
        ``cooldown`` seconds before ``link.created_at``, if its record is still kept;
        otherwise ``link``, added and remembered as the one issued.

        Atomic: two requests at once from one recipient get the same link.
        """

    # -- bandwidth: downloads in flight and bytes per day ------------------------------

    def renew_slot(self, slot_id: str, until: int, sent: int = 0) -> None:
        """Extend a lease taken with ``begin_download`` (if it is still held) to ``until``,
        noting that ``sent`` bytes of its download were delivered so far."""

    def settle_lease(self, slot_id: str, sent: int, completed: bool) -> bool:
        """Settle the download holding ``slot_id`` from what its lease keeps, as
        ``end_download`` would: ``sent`` bytes (at most those reserved), given back unless
        ``completed`` with every byte, its row logged. False if no such lease is held."""

    def count_slots(self, now: int) -> int:
        """How many leases are held at ``now``."""

    def egress(self, first_day: int, last_day: int) -> dict[int, int]:
        """Bytes served per day from ``first_day`` to ``last_day``; days with none left out."""

    # -- keyword rules, keyed by Rule.key -----------------------------------------------

    def add_rule(self, rule: Rule, replace: bool = False) -> bool:
        """Keep ``rule``; False (and nothing changes) if its key exists and not ``replace``."""

    def get_rule(self, key: str) -> Rule | None:
        """The rule whose key is ``key``, or None."""

    def list_rules(self) -> list[Rule]:
        """Every rule, by keyword."""

    def remove_rule(self, key: str) -> Rule | None:
        """Forget the rule whose key is ``key``; the rule, or None if there was none."""

    # -- API keys -----------------------------------------------------------------------

    def add_api_key(self, api_key: ApiKey) -> None:
        """Keep a new API key record."""

    def find_api_key(self, digest: str) -> ApiKey | None:
        """The key whose SHA-256 is ``digest``, revoked or not, or None."""

    def list_api_keys(self) -> list[ApiKey]:
        """Every API key record, newest first."""

    def revoke_api_key(self, key_id: str, at: int) -> ApiKey | None:
        """Mark the key revoked at ``at`` (kept if it already was); None if unknown."""

    def touch_api_key(self, key_id: str, at: int) -> None:
        """Note that the key was used at ``at``: only a note, which a store that cannot
        write at once (another holding its lock) may leave out rather than wait."""

    # -- what the Links and Activity pages show (sesame.activity) -----------------------

    def log_page(self, query: LogFilter, limit: int, offset: int = 0) -> list[LogRow]:
        """The rows ``query`` selects, newest first: ``limit`` of them after ``offset``."""

    def log_rows(self, query: LogFilter) -> Iterator[LogRow]:
        """Every row ``query`` selects, oldest first, read a little at a time."""

    def log_totals(self, query: LogFilter) -> Totals:
        """What the rows ``query`` selects add up to."""

    def log_series(self, query: LogFilter, utc_offset: int = 0) -> list[DayFile]:
        """The rows ``query`` selects per day (at ``utc_offset`` seconds from UTC) and file,
        by day then file; pairs without rows left out."""

    def outcome_counts(self, link_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """For each of ``link_ids`` with rows, how many rows it has per outcome."""

    def link_counts(self, now: float) -> dict[str, int]:
        """How many links are in each status (a LinkStatus value) at ``now``; empty ones left
        out."""

    def links_page(
        self, now: float, statuses: Collection[str], files: Collection[str], limit: int
    ) -> list[Link]:
        """At most ``limit`` links, newest first, in ``statuses`` at ``now`` and to ``files``
        (empty: any)."""

    def link_files(self) -> list[str]:
        """The files of the links kept, each once, sorted."""

    def roll_up(self, batch: int) -> int:
        """Add up to ``batch`` more log rows to the sums that serve ``log_totals`` and
        ``log_series`` over long periods, in one short transaction (or trip); how many
        rows were added (0: the sums are up to date). The answers are the same either way;
        only their cost depends on how far behind the sums are."""

    # -- retention ----------------------------------------------------------------------

    def drop_ended(self, before: int, batch: int) -> int:
        """Forget every link that expired or was revoked before ``before``, with its log
        rows and the keyword issue record that names it, ``batch`` rows per transaction (so
        downloads never wait long); how many links were forgotten. Bytes per day stay."""

    def backup(self, target: Path) -> None:
        """Write a consistent copy of the store to the new file ``target``, while it is in
        use. Raises BackupError if ``target`` exists, or if the store is backed up another
        way (Redis: the error says how)."""

    def flush(self, wait: float | None = None) -> None:
        """Write now what ``begin_downloads`` let in and has not yet written, waiting at
        most ``wait`` seconds for the store (None: its timeout)."""

    def close(self) -> None:
        """Write what is not yet written (``flush``), and release connections."""

    # -- health --------------------------------------------------------------------------

    def ping(self) -> None:
        """Return if the store answers and takes writes now; raise StoreUnavailable if not."""

    # -- replays ------------------------------------------------------------------------

    def seen_once(self, key: str, now: int, ttl: int) -> bool:
        """True the first time ``key`` is offered, and remember it until ``now + ttl``;
        False while it is remembered. Atomic: of two processes offering it, one gets True."""
