"""What every store offers. The gateway, the dashboard and the CLI speak only this."""

from __future__ import annotations

from typing import Protocol

from sesame.models import DownloadEvent, Link


class Store(Protocol):
    """Link records, their download counters and the download log.

    Every method is safe to call from several threads and several processes at once;
    ``claim_download`` is atomic, so a limit holds however many gateways race for it.
    """

    def add_link(self, link: Link) -> None:
        """Keep a new link record."""

    def get_link(self, link_id: str) -> Link | None:
        """The record of ``link_id``, or None."""

    def list_links(self) -> list[Link]:
        """Every link record, newest first."""

    def revoke_link(self, link_id: str, at: int) -> Link | None:
        """Mark the link revoked at ``at`` (kept if it already was); None if unknown."""

    def claim_download(self, link_id: str) -> bool:
        """Take one download from the link's limit, atomically. False if it is revoked,
        used up or unknown; nothing is taken then."""

    def release_download(self, link_id: str) -> None:
        """Give back a download taken by ``claim_download`` that did not complete."""

    def add_event(self, event: DownloadEvent) -> None:
        """Append one row to the download log."""

    def list_events(
        self, link_id: str | None = None, limit: int | None = None
    ) -> list[DownloadEvent]:
        """Download log rows, newest first, optionally for one link and at most ``limit``."""

    def close(self) -> None:
        """Release connections."""
