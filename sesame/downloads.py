"""What the gateway does for one download: admit the token's link, begin the download
against the link's limits and the owner's bandwidth, and settle it when the body is over.

A download's life belongs to one ``Download``: what it counts, what it reserved, its lease,
its log row and its outcome. The gateway only speaks HTTP around it and tells it how the
bytes went.

What counts (the README's "What counts as a download" says the same): a download is counted
when the file's last byte reaches the client. A request that holds the last byte (the whole
file, or the last piece of a resumed or segmented download) takes one from the link's limit
as it begins, atomically, and gives it back unless the client acknowledged every byte it was
sent. Other pieces (a probe of the first byte, a download manager's middle segments) are not
counted, but every byte of every request is reserved as it begins, and a limited link never
serves more than (limit + 1) x the file's size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from sesame.bandwidth import Bandwidth, Usage
from sesame.errors import LinkExhausted, LinkExpired, LinkInvalid, LinkRevoked
from sesame.links import Clock, LinkSigner
from sesame.models import (
    Access,
    DownloadEnd,
    DownloadEvent,
    DownloadStart,
    Link,
    Outcome,
    Refusal,
    Visitor,
    utc,
)
from sesame.ranges import Plan
from sesame.settings import Settings
from sesame.store import Store
from sesame.values import quick_init

# How long a download handed to nginx keeps its place if nginx's report never comes.
OFFLOADED_LEASE = 6 * 3600


@quick_init
@dataclass(frozen=True, slots=True)
class Admitted:
    """A link a token opens. ``late``: the link has expired, but within the resume grace of
    a download begun before: only the rest of a download may still be sent."""

    link: Link
    late: LinkExpired | None = None

    def check_open(self) -> Link:
        """The link, if it is open for anything but the rest of a download: raises the
        expiry, LinkRevoked or LinkExhausted."""
        if self.late is not None:
            raise self.late
        return _usable(self.link)


class Download:
    """One download let in, until it is settled: call ``renew`` every few seconds while its
    bytes flow, then ``finish`` once, with what the client acknowledged."""

    def __init__(
        self, downloads: Downloads, link: Link, start: DownloadStart, access: Access
    ) -> None:
        assert start.event is not None
        self._downloads = downloads
        self.link = link
        self.start = start
        self.access = access
        self.begun: DownloadEvent = start.event  # its log row as it began
        self.finished: DownloadEvent | None = None  # its log row once settled

    def renew(self, delivered: int) -> None:
        """Keep the download's place for another lease, noting the bytes delivered so far
        (a lease that lapses is settled with those)."""
        if self.start.settled or self.finished is not None:
            return
        until = int(self._downloads.clock()) + self._downloads.bandwidth.lease
        self._downloads.store.renew_slot(self.start.slot_id, until, delivered)

    def finish(self, delivered: int, completed: bool) -> DownloadEvent:
        """Settle the download: ``delivered`` bytes acknowledged by the client, ``completed``
        if that was every byte it was sent. One trip to the store, none for a download
        settled as it began that did complete. Returns the log row; a second call returns
        it again and changes nothing."""
        if self.finished is not None:
            return self.finished
        start, begun = self.start, self.begun
        completed = completed and delivered >= start.nbytes
        if start.settled and completed:
            self.finished = begun
            return begun
        event = replace(
            begun,
            at=self._downloads.clock(),
            bytes_sent=min(delivered, start.nbytes),
            outcome=Outcome.COMPLETED if completed else Outcome.ABORTED,
            counted=start.counted and completed,
        )
        self._downloads.store.end_download(
            DownloadEnd(
                link_id=start.link_id,
                extra_bytes=event.bytes_sent - start.nbytes,
                uncount=start.counted and not completed,
                day=start.day,
                slot_id=start.slot_id,
                event=event,
                amends=begun if start.settled else None,
                completed=completed,
                final=start.counted,
            )
        )
        self.finished = event
        return event

    def __str__(self) -> str:
        """What the request's access line says of the download, as it stands."""
        event = self.finished or self.begun
        return f"link {self.start.link_id} {self.access}, {event.bytes_sent} bytes, {event.outcome}"


@quick_init
@dataclass(frozen=True, slots=True)
class Starting:
    """A download about to begin: what its link's store is asked (``start``)."""

    downloads: Downloads
    link: Link
    start: DownloadStart
    access: Access

    def begun(self, refusal: Refusal | None) -> Download:
        """The download, once the store let it in (``refusal`` None); else its refusal:
        LinkRevoked or LinkExhausted, BudgetSpent or TooBusy."""
        downloads, link = self.downloads, self.link
        if refusal is Refusal.LINK:
            current = downloads.store.get_link(link.id) or link
            _usable(current, may_be_used_up=not self.start.counted)
            raise LinkExhausted(link.id, link.max_downloads or 0)
        if refusal is not None:
            raise downloads.bandwidth.refused(refusal, self.start)
        return Download(downloads, link, self.start, self.access)


class Downloads:
    """The steps of a download over one store and one signer."""

    def __init__(self, settings: Settings, store: Store, signer: LinkSigner, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.clock = clock
        self.bandwidth = Bandwidth(settings, store, clock)

    def admit(
        self, token: str, ranged: bool = False, known: dict[str, Link | None] | None = None
    ) -> Admitted:
        """The link a token opens, if it may still be used.

        Signature and lifetime are checked before any store access: LinkInvalid,
        LinkExpired. For a request for a part of the file (``ranged``), a link whose
        download began before it expired stays admitted, late, for ``resume_grace`` after
        expiry. Then the record: LinkInvalid if it is gone,
        LinkRevoked. Whether it is used up is for ``begin`` (or ``check_open``) to say.
        ``known``: the records already read for requests that came together, by id; a
        record read here is added.
        """
        try:
            claims, late = self.signer.verify(token), None
        except LinkExpired as exc:
            if not ranged or not self._in_grace(exc):
                raise
            claims, late = self.signer.read(token), exc
        if known is None or claims.link_id not in known:
            link = self.store.get_link(claims.link_id)
            if known is not None:
                known[claims.link_id] = link
        else:
            link = known[claims.link_id]
        # A record made at another time is another link that happens to share the id.
        if link is None or link.created_at != claims.signed_at:
            raise LinkInvalid()
        if late and (link.started_at is None or link.started_at > link.expires_at):
            raise late
        if link.revoked_at is not None:
            raise LinkRevoked(link.id, utc(link.revoked_at))
        return Admitted(link, late)

    def begin(
        self,
        admitted: Admitted,
        plan: Plan,
        visitor: Visitor,
        settled: bool = False,
        offloaded: bool = False,
    ) -> Download:
        """Start sending ``plan``'s bytes of the link's file. One trip to the store, all or
        nothing; ``settled`` for a body that is over once let in (see DownloadStart);
        ``offloaded`` for one another server sends and reports (see ``report``).

        A late link sends only the rest of a download: the whole file raises its expiry.
        Then the owner's bandwidth (see Bandwidth.start): BudgetSpent, TooBusy. Then the
        link (see the module's docstring): LinkRevoked or LinkExhausted, atomically with
        respect to every process.
        """
        starting = self.starting(admitted, plan, visitor, settled, offloaded)
        return starting.begun(self.store.begin_download(starting.start))

    def begin_all(self, starting: list[Starting]) -> list[Download | BaseException]:
        """``begin`` of each of ``starting`` (made by ``starting``) in as few trips to the
        store as it can: each one's download, or the error ``begin`` would have raised."""
        answers = self.store.begin_downloads([each.start for each in starting])
        begun: list[Download | BaseException] = []
        for each, answer in zip(starting, answers, strict=True):
            try:
                if isinstance(answer, BaseException):
                    raise answer
                begun.append(each.begun(answer))
            except Exception as exc:
                begun.append(exc)
        return begun

    def starting(
        self,
        admitted: Admitted,
        plan: Plan,
        visitor: Visitor,
        settled: bool = False,
        offloaded: bool = False,
    ) -> Starting:
        """What ``begin`` asks of the store, before it does (see ``begin``); raises the
        expiry of a late link asked for the whole file."""
        link = admitted.link
        access = Access.FULL if plan.whole else Access.RESUME
        if admitted.late is not None and access is Access.FULL:
            raise admitted.late
        cap = None if link.max_downloads is None else (link.max_downloads + 1) * plan.size
        counted = plan.reaches_end
        event = self.event(link.id, visitor, plan.status, plan.nbytes, Outcome.COMPLETED, counted)
        lease = OFFLOADED_LEASE if offloaded else None
        piece = plan.status == 206 and not plan.whole
        # The session joins pieces, and is kept with a lease: a download over as it begins
        # that is no piece has no use for it.
        session = _session(link.id, visitor) if piece or not settled else ""
        start = self.bandwidth.start(
            link.id, counted, plan.nbytes, cap, event, settled, lease, session, piece
        )
        return Starting(self, link, start, access)

    def report(self, slot_id: str, sent: int, completed: bool) -> bool:
        """Settle a download another server sent (nginx, in offload mode) as it reports:
        ``sent`` bytes, ``completed`` or not. False if it was settled already (or its lease
        lapsed and was given back)."""
        return self.store.settle_lease(slot_id, sent, completed)

    def event(
        self,
        link_id: str,
        visitor: Visitor,
        status: int,
        sent: int,
        outcome: Outcome,
        counted: bool = False,
    ) -> DownloadEvent:
        """A log row of a request for ``link_id``, now."""
        return DownloadEvent(
            link_id=link_id,
            at=self.clock(),
            client_ip=visitor.client_ip,
            user_agent=visitor.user_agent,
            status=status,
            bytes_sent=sent,
            outcome=outcome,
            counted=counted,
        )

    def record(self, event: DownloadEvent) -> None:
        """Append a request that counts nothing (a HEAD, a page, a refusal) to the download
        log: held back by a store that holds rows (Store.note_event)."""
        self.store.note_event(event)

    def usage(self) -> Usage:
        """Bytes served today against the daily budget, downloads in flight against the
        cap, and bytes per day for the last 30 days."""
        return self.bandwidth.usage()

    def _in_grace(self, exc: LinkExpired) -> bool:
        return self.clock() <= exc.expired_at.timestamp() + self.settings.resume_grace


def _session(link_id: str, visitor: Visitor) -> str:
    """The requests of one client (address and program) for one link: the pieces of one
    download (see DownloadStart.session)."""
    who = f"{link_id}\0{visitor.client_ip}\0{visitor.user_agent}".encode()
    return hashlib.sha256(who).hexdigest()[:24]


def _usable(link: Link, may_be_used_up: bool = False) -> Link:
    if link.revoked_at is not None:
        raise LinkRevoked(link.id, utc(link.revoked_at))
    limit = link.max_downloads
    if limit is not None and link.downloads >= limit and not may_be_used_up:
        raise LinkExhausted(link.id, limit)
    return link
