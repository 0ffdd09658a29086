"""What the gateway does for one download: admit the token's link, begin the download
against the link's limits and the owner's bandwidth, settle it when the body is done, and
log each request."""

from __future__ import annotations

from sesame.bandwidth import Bandwidth, Ticket, Usage
from sesame.errors import LinkExhausted, LinkExpired, LinkInvalid, LinkRevoked
from sesame.links import Clock, LinkSigner
from sesame.models import Access, DownloadEvent, Link, Refusal, utc
from sesame.settings import Settings
from sesame.store import Store


class Downloads:
    """The steps of a download over one store and one signer."""

    def __init__(self, settings: Settings, store: Store, signer: LinkSigner, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.clock = clock
        self.bandwidth = Bandwidth(settings, store, clock)

    def admit(self, token: str, access: Access = Access.FULL) -> Link:
        """The link a token opens, if it may be used for ``access`` now.

        Signature and lifetime are checked before any store access: LinkInvalid,
        LinkExpired. A RESUME of a link whose download began before it expired is
        still served for ``resume_grace`` after expiry. Then the record: LinkRevoked,
        and LinkExhausted for anything but a RESUME (which never takes a download).
        """
        try:
            claims, expired = self.signer.verify(token), None
        except LinkExpired as exc:
            if access is not Access.RESUME or not self._in_grace(exc):
                raise
            claims, expired = self.signer.read(token), exc
        link = self.store.get_link(claims.link_id)
        # A record made at another time is another link that happens to share the id.
        if link is None or link.created_at != claims.signed_at:
            raise LinkInvalid()
        if expired and (link.started_at is None or link.started_at > link.expires_at):
            raise expired
        return _usable(link, may_be_used_up=access is Access.RESUME)

    def begin(
        self,
        link: Link,
        access: Access,
        nbytes: int,
        file_size: int,
        event: DownloadEvent | None = None,
    ) -> Ticket:
        """Start serving ``nbytes`` of the link's file (``file_size`` bytes in all); the
        ticket goes back to ``end``. One trip to the store, all or nothing. With ``event``,
        a body that leaves in one write is settled and logged in that same trip, and there
        is no ``end``.

        First the owner's bandwidth (see Bandwidth.start): BudgetSpent, TooBusy. Then the
        link: a FULL download takes one from its limit; every download reserves its
        bytes, and a limited link never serves more than (limit + 1) x the file's size.
        Raises LinkRevoked or LinkExhausted, atomically with respect to every process.
        """
        cap = None if link.max_downloads is None else (link.max_downloads + 1) * file_size
        start = self.bandwidth.start(link.id, access, nbytes, cap, event)
        refusal = self.store.begin_download(start)
        if refusal is Refusal.LINK:
            current = self.store.get_link(link.id) or link
            _usable(current, may_be_used_up=not start.counted)
            raise LinkExhausted(link.id, link.max_downloads or 0)
        if refusal is not None:
            raise self.bandwidth.refused(refusal, start)
        return Ticket(link.id, start.counted, nbytes, start.day, start.slot_id, start.now)

    def end(
        self, ticket: Ticket, sent: int, completed: bool, event: DownloadEvent | None = None
    ) -> None:
        """Settle a download in one trip to the store: keep the bytes really sent, give the
        download back if a FULL download did not complete, free its place among those in
        flight, and log ``event`` if given."""
        self.store.end_download(ticket.end(sent, completed, event))

    def record(self, event: DownloadEvent) -> None:
        """Append a request to the download log."""
        self.store.add_event(event)

    def usage(self) -> Usage:
        """Bytes served today against the daily budget, downloads in flight against the
        cap, and bytes per day for the last 30 days."""
        return self.bandwidth.usage()

    def _in_grace(self, exc: LinkExpired) -> bool:
        return self.clock() <= exc.expired_at.timestamp() + self.settings.resume_grace


def _usable(link: Link, may_be_used_up: bool = False) -> Link:
    if link.revoked_at is not None:
        raise LinkRevoked(link.id, utc(link.revoked_at))
    limit = link.max_downloads
    if limit is not None and link.downloads >= limit and not may_be_used_up:
        raise LinkExhausted(link.id, limit)
    return link
