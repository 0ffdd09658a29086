"""The records Sesame keeps and hands around: links, files, download events, keyword rules
and API keys."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sesame.values import quick_init


def utc(timestamp: float) -> datetime:
    """A Unix timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


def human_size(size: int) -> str:
    """``15`` as ``15 B``, ``1536`` as ``1.5 KiB``: binary units after a space, one decimal
    above bytes. The one way Sesame writes a size (dashboard, CLI, the gateway's pages)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if round(value, 1) < 1024 or unit == "TiB":  # 1048575 B is 1.0 MiB, not 1024.0 KiB
            break
    return f"{value:.1f} {unit}"


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
    PREVIEW = "preview"  # a link-preview bot or a prefetch got a card, not the file
    LANDING = "landing"  # a person saw the link's landing page; its button downloads


class Access(StrEnum):
    """What a request for a link asks for; only FULL takes a download from the limit."""

    FULL = "full"  # the body from its first byte
    RESUME = "resume"  # the body from a later byte: the rest of an interrupted download
    HEAD = "head"  # headers only
    PREVIEW = "preview"  # a card about the file, for a preview bot or a prefetch


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
    bytes_served: int = 0
    started_at: int | None = None  # when a download of it was first begun
    landing: bool = False  # browsers see a page with a download button first
    rate: int | None = None  # bytes per second one download of it may take; None: no cap

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
            "bytes_served": link.bytes_served,
            "recipient": link.recipient,
            "note": link.note,
            "revoked_at": utc(link.revoked_at).isoformat() if link.revoked_at else None,
            "landing": link.landing,
            "rate": link.rate,
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


MAX_USER_AGENT = 512  # characters of a User-Agent the log keeps: real ones are < 300
MAX_CLIENT_IP = 64  # an IPv6 address with a zone fits


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


@quick_init
@dataclass(frozen=True, slots=True)
class DownloadEvent:
    """One request that reached a link's record. What the client wrote itself (its
    User-Agent, its address as a proxy reported it) is kept cut to MAX_USER_AGENT and
    MAX_CLIENT_IP characters, whoever builds the row: the log cannot be made to grow."""

    link_id: str
    at: float
    client_ip: str | None
    user_agent: str | None
    status: int
    bytes_sent: int
    outcome: Outcome
    counted: bool = False  # a completed download that took one from the link's limit

    def __post_init__(self) -> None:
        # The dataclass way to normalise a frozen field; a no-op for every real client.
        if self.user_agent is not None and len(self.user_agent) > MAX_USER_AGENT:
            object.__setattr__(self, "user_agent", clip(self.user_agent, MAX_USER_AGENT))
        if self.client_ip is not None and len(self.client_ip) > MAX_CLIENT_IP:
            object.__setattr__(self, "client_ip", clip(self.client_ip, MAX_CLIENT_IP))


@quick_init
@dataclass(frozen=True, slots=True)
class Visitor:
    """Who asks, as the download log keeps it."""

    client_ip: str | None
    user_agent: str | None


class Refusal(StrEnum):
    """Why the store would not begin a download (and changed nothing), in the order it
    checks: the owner's bandwidth first, then the link."""

    BUDGET = "budget"  # the day's bytes would pass the budget
    BUSY = "busy"  # every place under the concurrency cap is taken
    LINK = "link"  # the link is unknown, revoked, used up, or over its byte cap


@quick_init
@dataclass(frozen=True, slots=True)
class DownloadStart:
    """What beginning one download asks of the store, all or nothing: ``nbytes`` reserved
    on the day's egress (within ``budget``, if set), a place in flight (a lease until
    ``until``, under ``cap`` leases, if set), and the link's bytes and, if ``counted``, one
    of its downloads (within its limit and ``byte_cap``, if set).

    With ``settled``, the download is settled as it begins (a body that leaves in one write,
    or one handed to nginx): ``event`` is logged in the same trip and no lease is taken,
    though a full cap still refuses it. Without, the lease keeps ``event`` and what the
    download reserved, so that a lease that lapses (its gateway died) is settled as aborted
    with the bytes last reported, by whichever gateway begins a download next."""

    link_id: str
    now: int
    nbytes: int  # never negative
    counted: bool
    byte_cap: int | None
    day: int  # days since 1970-01-01 (UTC) that the bytes count on
    budget: int | None
    slot_id: str  # the lease's id; "" for a download settled as it begins (it takes none)
    until: int
    cap: int | None
    event: DownloadEvent | None = None
    settled: bool = False
    # Requests of one client for one link (a download manager's segments) share a session: a
    # ``piece`` (a Range request) that would count joins a counted download of its session in
    # flight or arrived within a minute instead, and a counted one that ends unfinished passes
    # its count to one still in flight. A request for the whole file never joins.
    session: str = ""
    piece: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class DownloadEnd:
    """What settling one download asks of the store: ``extra_bytes`` (sent minus reserved;
    negative for bytes reserved but not sent) on the link and on ``day``'s egress, the
    download given back if ``uncount``, the lease ``slot_id`` dropped, and ``event``
    logged if given: in place of ``amends``, the row logged when it began, if given (a
    download settled as it began that turned out aborted).

    For a download that holds a lease, whether it counts is the lease's to say (see
    DownloadStart.session): the store gives it back unless ``completed`` (or a piece of its
    session was, or one is still in flight), and sets ``event.counted`` to match."""

    link_id: str
    extra_bytes: int
    uncount: bool
    day: int
    slot_id: str
    event: DownloadEvent | None = None
    amends: DownloadEvent | None = None
    completed: bool = False
    final: bool = False  # it held the file's last byte: once complete, its session's arrived


def keyword_key(text: str) -> str:
    """The form in which keywords are compared: NFKC, case-folded, without whitespace and
    without punctuation around it, so "芝麻开门", " 芝麻 开门！" and "芝麻开门。" are one."""
    folded = "".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(folded)
    while start < end and _is_punctuation(folded[start]):
        start += 1
    while end > start and _is_punctuation(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith(("P", "C"))


@dataclass(frozen=True, slots=True)
class Rule:
    """A keyword that a WeChat follower sends to get a link to ``file``.

    Each link lives ``lifetime`` seconds and allows ``max_downloads``; a sender who asks
    again within ``cooldown`` seconds of their last link gets that link back. ``template``
    is the reply (None: the default one); ``landing`` gives the links a landing page.
    """

    keyword: str
    file: str
    lifetime: int
    max_downloads: int | None = None
    cooldown: int = 0
    template: str | None = None
    landing: bool = False
    created_at: int = 0

    @property
    def key(self) -> str:
        """The keyword as it is matched and stored."""
        return keyword_key(self.keyword)

    def as_dict(self) -> dict[str, object]:
        return {
            "keyword": self.keyword,
            "file": self.file,
            "lifetime": self.lifetime,
            "max_downloads": self.max_downloads,
            "cooldown": self.cooldown,
            "template": self.template,
            "landing": self.landing,
            "created_at": utc(self.created_at).isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: never the key itself, only its SHA-256 and its first letters."""

    id: str
    name: str
    prefix: str  # the key's first characters, to recognise it in a list
    digest: str  # SHA-256 of the whole key, hex
    created_at: int
    revoked_at: int | None = None
    last_used_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": utc(self.created_at).isoformat(),
            "revoked_at": utc(self.revoked_at).isoformat() if self.revoked_at else None,
            "last_used_at": utc(self.last_used_at).isoformat() if self.last_used_at else None,
        }


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created: ``secret`` is the key itself, shown this once and never stored."""

    api_key: ApiKey
    secret: str

    def as_dict(self) -> dict[str, object]:
        return self.api_key.as_dict() | {"key": self.secret}
