"""The records Sesame keeps and hands around: links, files, download events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


def utc(timestamp: float) -> datetime:
    """A Unix timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


def human_size(size: int) -> str:
    """``1536`` as ``1.5 KiB``: binary units, one decimal above bytes."""
    value, units = float(size), ["B", "KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{size} B" if units[0] == "B" else f"{value:.1f} {units[0]}"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED_UP = "used up"


class Outcome(StrEnum):
    """How one request for a link ended."""

    COMPLETED = "completed"  # the whole body (or the asked range) was sent
    ABORTED = "aborted"  # the client went away before the body was done
    REFUSED = "refused"  # answered with an error status; nothing was sent
    HEAD = "head"  # headers only


@dataclass(frozen=True, slots=True)
class Link:
    """One shared link. Times are Unix seconds; ``created_at`` is also the token's signing time."""

    id: str
    file: str
    created_at: int
    expires_at: int
    max_downloads: int | None = None
    recipient: str | None = None
    note: str | None = None
    revoked_at: int | None = None
    downloads: int = 0

    @property
    def lifetime(self) -> int:
        return self.expires_at - self.created_at

    def status(self, now: float) -> LinkStatus:
        """The link's state at ``now``: revocation wins over use, use over expiry."""
        if self.revoked_at is not None:
            return LinkStatus.REVOKED
        if self.max_downloads is not None and self.downloads >= self.max_downloads:
            return LinkStatus.USED_UP
        if now > self.expires_at:
            return LinkStatus.EXPIRED
        return LinkStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class SharedLink:
    """A link as handed to the owner: the record and the URL that opens it."""

    link: Link
    url: str

    def as_dict(self) -> dict[str, object]:
        """The JSON shape the CLI and the API print."""
        link = self.link
        return {
            "id": link.id,
            "url": self.url,
            "file": link.file,
            "created_at": utc(link.created_at).isoformat(),
            "expires_at": utc(link.expires_at).isoformat(),
            "max_downloads": link.max_downloads,
            "downloads": link.downloads,
            "recipient": link.recipient,
            "note": link.note,
            "revoked_at": utc(link.revoked_at).isoformat() if link.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A shareable file: ``name`` is its path relative to the files folder, with ``/``."""

    name: str
    size: int
    modified_at: float
    sha256: str
    media_type: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "modified_at": utc(self.modified_at).isoformat(),
            "sha256": self.sha256,
            "media_type": self.media_type,
        }


@dataclass(frozen=True, slots=True)
class DownloadEvent:
    """One request that reached a link's record."""

    link_id: str
    at: float
    client_ip: str | None
    user_agent: str | None
    status: int
    bytes_sent: int
    outcome: Outcome
