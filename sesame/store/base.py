"""What every store offers. The gateway, the dashboard and the CLI speak only this."""

from __future__ import annotations

from typing import Protocol

from sesame.models import ApiKey, DownloadEvent, Link, Rule


class Store(Protocol):
    """Link records, their download counters and the download log; keyword rules and the
    links issued for them; API keys.

    Every method is safe to call from several threads and several processes at once;
    ``begin_download`` is atomic, so a limit holds however many gateways race for it.
    """

    def add_link(self, link: Link) -> None:
        """Keep a new link record."""

    def get_link(self, link_id: str) -> Link | None:
        """The record of ``link_id``, or None."""

    def list_links(self) -> list[Link]:
        """Every link record, newest first."""

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        """Mark the link revoked at ``at`` (kept if it already was); None if unknown."""

    def begin_download(
        self, link_id: str, now: int, nbytes: int, counted: bool, byte_cap: int | None
    ) -> bool:
        """Atomically start serving ``nbytes`` of the link's file.

        Succeeds only if the link exists and is not revoked, if ``counted`` requests still
        fit under its download limit, and if its bytes served stay within ``byte_cap``.
        On success the download count (if ``counted``) and bytes served grow and
        ``started_at`` is set if it was not; on failure nothing changes.
        """

    def end_download(self, link_id: str, extra_bytes: int, uncount: bool) -> None:
        """Settle a download begun with ``begin_download``: add ``extra_bytes`` (negative
        for bytes reserved but not sent) and, if ``uncount``, give the download back."""

    def end_download_logged(
        self, link_id: str, extra_bytes: int, uncount: bool, event: DownloadEvent
    ) -> None:
        """``end_download`` and ``add_event(event)`` in one trip to the store: what every
        download does when its body is done."""

    def add_event(self, event: DownloadEvent) -> None:
        """Append one row to the download log."""

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

    def take_slot(self, slot_id: str, now: int, until: int, cap: int | None) -> bool:
        """Atomically note a download in flight until ``until`` (a lease): first forget
        leases that lapsed before ``now``; then, if fewer than ``cap`` remain (or no cap),
        add this one. False, and nothing changes, when the cap is reached."""

    def renew_slot(self, slot_id: str, until: int) -> None:
        """Extend a lease taken with ``take_slot`` (if it is still held) to ``until``."""

    def drop_slot(self, slot_id: str) -> None:
        """Forget a lease: its download is over."""

    def count_slots(self, now: int) -> int:
        """How many leases are held at ``now``."""

    def add_egress(self, day: int, nbytes: int, budget: int | None) -> bool:
        """Atomically add ``nbytes`` (negative to give some back, never below 0) to the bytes
        served on ``day`` (days since 1970-01-01). If ``budget`` is set and the day's total
        would pass it, False and nothing changes."""

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
        """Note that the key was used at ``at``."""

    def close(self) -> None:
        """Release connections."""
