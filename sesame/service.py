"""One method per action on links, files, keyword rules and API keys. The CLI, the dashboard,
the gateway's API and its WeChat endpoint call these; none of them re-implements them."""

from __future__ import annotations

import secrets
import string
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sesame import apikeys, replies
from sesame.bandwidth import Bandwidth, Ticket, Usage, parse_rate
from sesame.catalog import Catalog
from sesame.errors import (
    ApiKeyInvalid,
    ApiKeyNotFound,
    InvalidInput,
    LinkExhausted,
    LinkExpired,
    LinkInvalid,
    LinkNotFound,
    LinkRevoked,
    RuleExists,
    RuleNotFound,
)
from sesame.lifetimes import format_lifetime, parse_lifetime
from sesame.links import Clock, LinkSigner
from sesame.models import (
    Access,
    ApiKey,
    DownloadEvent,
    FileInfo,
    Link,
    LinkStatus,
    NewApiKey,
    Rule,
    SharedLink,
    keyword_key,
    utc,
)
from sesame.settings import Settings, signing_keys
from sesame.store import Store, open_store

MAX_TEXT = 500
ID_ALPHABET = string.ascii_letters + string.digits


def new_id() -> str:
    """A random link id: 11 letters and digits (65 bits), never starting with a dash."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(11))


@dataclass
class Service:
    """Sesame's actions over one store, one catalog and one signer."""

    settings: Settings
    store: Store
    catalog: Catalog
    signer: LinkSigner
    clock: Clock = field(default=time.time)
    bandwidth: Bandwidth = field(init=False)

    def __post_init__(self) -> None:
        self.bandwidth = Bandwidth(self.settings, self.store, self.clock)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = time.time) -> Service:
        """Build everything the actions need from ``settings``."""
        signer = LinkSigner(signing_keys(settings), settings.max_lifetime, clock)
        store = open_store(settings.resolved_store_url, settings.retention)
        return cls(settings, store, Catalog(settings.files_dir), signer, clock)

    # -- the owner's actions ------------------------------------------------------------

    def share(
        self,
        file: str,
        lifetime: str | int | None = None,
        max_downloads: int | None = None,
        recipient: str | None = None,
        note: str | None = None,
        landing: bool = False,
        rate: str | int | None = None,
    ) -> SharedLink:
        """Make a link to ``file`` that works for ``lifetime`` (default: the setting).
        With ``landing``, browsers see a page with the file's details and a button first.
        ``rate`` caps each download's speed (``500KiB`` a second; default: the setting).

        Raises FileMissing for a file outside the catalog and InvalidInput for a lifetime
        beyond the maximum, a limit below 1, a speed cap below 1KiB or an over-long
        recipient or note.
        """
        info = self.catalog.info(file)
        seconds = self._lifetime(lifetime)
        _check_limit(max_downloads)
        cap = parse_rate(rate, self._default_rate)
        now = int(self.clock())
        link = Link(
            id=new_id(),
            file=info.name,
            created_at=now,
            expires_at=now + seconds,
            max_downloads=max_downloads,
            recipient=_text(recipient, "recipient"),
            note=_text(note, "note"),
            landing=landing,
            rate=cap,
        )
        self.store.add_link(link)
        return self.shared(link)

    def revoke(self, link_id: str) -> Link:
        """Revoke a link; the gateway refuses it from the next request on."""
        link = self.store.revoke_link(link_id, int(self.clock()))
        if link is None:
            raise LinkNotFound(link_id)
        return link

    def link(self, link_id: str) -> SharedLink:
        """One link by id. Raises LinkNotFound."""
        link = self.store.get_link(link_id)
        if link is None:
            raise LinkNotFound(link_id)
        return self.shared(link)

    def links(self, include_inactive: bool = False) -> list[SharedLink]:
        """Links, newest first: only the active ones unless ``include_inactive``."""
        now = self.clock()
        return [
            self.shared(link)
            for link in self.store.list_links()
            if include_inactive or link.status(now) is LinkStatus.ACTIVE
        ]

    def files(self) -> list[FileInfo]:
        """Every file the owner can share."""
        return self.catalog.files()

    def upload(self, name: str, source: BinaryIO, overwrite: bool = False) -> FileInfo:
        """Add a file to the catalog, within the upload size limit. See Catalog.save."""
        return self.catalog.save(name, source, self.settings.max_upload_size, overwrite)

    def free_name(self, name: str) -> str:
        """``name`` made safe, or a variant of it that takes no existing file (``a (2).txt``)."""
        return self.catalog.free_name(name)

    def events(self, link_id: str | None = None, limit: int | None = None) -> list[DownloadEvent]:
        """The download log, newest first."""
        return self.store.list_events(link_id, limit)

    # -- keyword rules (WeChat) -------------------------------------------------------------

    def add_rule(
        self,
        keyword: str,
        file: str,
        lifetime: str | int | None = None,
        max_downloads: int | None = None,
        cooldown: str | int | None = None,
        template: str | None = None,
        landing: bool = False,
        replace: bool = False,
    ) -> Rule:
        """Answer ``keyword`` with a link to ``file`` (lifetime, limit and landing page as
        in ``share``). A sender who asks again within ``cooldown`` (default: the lifetime;
        0 for none) gets their last link back. ``template`` is the reply, with placeholders
        from ``replies.PLACEHOLDERS`` (default: ``replies.DEFAULT_TEMPLATE``).

        Raises FileMissing, InvalidInput for a bad value or template, and RuleExists if the
        keyword has a rule and ``replace`` is false.
        """
        seconds = self._lifetime(lifetime)
        _check_limit(max_downloads)
        rule = Rule(
            keyword=replies.check_keyword(keyword),
            file=self.catalog.info(file).name,
            lifetime=seconds,
            max_downloads=max_downloads,
            cooldown=seconds if cooldown is None else _cooldown(cooldown),
            template=replies.check_template(template) if template else None,
            landing=landing,
            created_at=int(self.clock()),
        )
        if not self.store.add_rule(rule, replace):
            raise RuleExists(rule.keyword)
        return rule

    def remove_rule(self, keyword: str) -> Rule:
        """Stop answering ``keyword``; links already sent keep working. Raises RuleNotFound."""
        rule = self.store.remove_rule(keyword_key(keyword))
        if rule is None:
            raise RuleNotFound(keyword)
        return rule

    def rule(self, keyword: str) -> Rule:
        """The rule that ``keyword`` matches. Raises RuleNotFound."""
        rule = self.store.get_rule(keyword_key(keyword))
        if rule is None:
            raise RuleNotFound(keyword)
        return rule

    def rules(self) -> list[Rule]:
        """Every keyword rule, by keyword."""
        return self.store.list_rules()

    def link_for_keyword(self, keyword: str, openid: str) -> SharedLink | None:
        """The link a WeChat follower ``openid`` gets for sending ``keyword``: a new one, or
        the one they got within the rule's cool-down. None if no rule matches.
        Raises FileMissing if the rule's file is gone."""
        rule = self.store.get_rule(keyword_key(keyword))
        return None if rule is None else self._issue(rule, openid)

    def keyword_reply(self, keyword: str, openid: str) -> str | None:
        """The text that answers ``keyword`` from ``openid``: the rule's template filled with
        the link (see ``link_for_keyword``), or when that link is used up, revoked or expired
        within the cool-down, when to ask again. None if no rule matches."""
        rule = self.store.get_rule(keyword_key(keyword))
        if rule is None:
            return None
        shared = self._issue(rule, openid)
        info = self.catalog.info(rule.file)
        return replies.reply(rule, shared, info, self.clock(), self.settings.zone)

    def _issue(self, rule: Rule, openid: str) -> SharedLink:
        self.catalog.resolve(rule.file)
        now = int(self.clock())
        link = Link(
            id=new_id(),
            file=rule.file,
            created_at=now,
            expires_at=now + min(rule.lifetime, self.settings.max_lifetime),
            max_downloads=rule.max_downloads,
            recipient=_text(openid, "recipient"),
            note=f"keyword {rule.keyword}",
            landing=rule.landing,
            rate=self._default_rate,
        )
        scope = f"rule:{rule.key}:{rule.created_at}"  # a replaced rule starts afresh
        return self.shared(self.store.issue_link(scope, openid, link, rule.cooldown))

    # -- API keys --------------------------------------------------------------------------

    def create_api_key(self, name: str) -> NewApiKey:
        """A new API key called ``name``. Its secret is in the result and nowhere else: the
        store keeps only its SHA-256. Raises InvalidInput for an empty or long name."""
        label = _text(name, "name")
        if not label:
            raise InvalidInput("An API key needs a name, like the bot or script that uses it.")
        secret = apikeys.new_secret()
        key = ApiKey(
            id=new_id(),
            name=label,
            prefix=apikeys.prefix(secret),
            digest=apikeys.digest(secret),
            created_at=int(self.clock()),
        )
        self.store.add_api_key(key)
        return NewApiKey(key, secret)

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke an API key; it is refused from the next request on. Raises ApiKeyNotFound."""
        key = self.store.revoke_api_key(key_id, int(self.clock()))
        if key is None:
            raise ApiKeyNotFound(key_id)
        return key

    def api_keys(self) -> list[ApiKey]:
        """Every API key, newest first, revoked ones included."""
        return self.store.list_api_keys()

    def authenticate(self, secret: str) -> ApiKey:
        """The active API key ``secret`` is, noting its use. Raises ApiKeyInvalid."""
        if not apikeys.looks_like_key(secret):
            raise ApiKeyInvalid()
        key = self.store.find_api_key(apikeys.digest(secret))
        if key is None or not key.active:
            raise ApiKeyInvalid()
        self.store.touch_api_key(key.id, int(self.clock()))
        return key

    # -- what the faces share ----------------------------------------------------------------

    def shared(self, link: Link) -> SharedLink:
        """A record with its URL. The token is minted again from the record, not stored."""
        token = self.signer.mint(link.id, link.lifetime, link.created_at)
        return SharedLink(link, f"{self.settings.public_url}/d/{token}")

    # -- what a download needs ----------------------------------------------------------

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

    def begin(self, link: Link, access: Access, nbytes: int, file_size: int) -> Ticket:
        """Start serving ``nbytes`` of the link's file (``file_size`` bytes in all); the
        ticket goes back to ``end``.

        First the owner's bandwidth (see Bandwidth.take): BudgetSpent, TooBusy. Then the
        link: a FULL download takes one from its limit; every download reserves its
        bytes, and a limited link never serves more than (limit + 1) x the file's size.
        Raises LinkRevoked or LinkExhausted, atomically with respect to every process.
        """
        ticket = self.bandwidth.take(access, nbytes)
        counted = access is Access.FULL
        cap = None if link.max_downloads is None else (link.max_downloads + 1) * file_size
        if not self.store.begin_download(link.id, int(self.clock()), nbytes, counted, cap):
            self.bandwidth.give_back(ticket, nbytes, 0)
            current = self.store.get_link(link.id) or link
            _usable(current, may_be_used_up=not counted)
            raise LinkExhausted(link.id, link.max_downloads or 0)
        return ticket

    def end(
        self,
        link: Link,
        access: Access,
        reserved: int,
        sent: int,
        completed: bool,
        ticket: Ticket | None = None,
        event: DownloadEvent | None = None,
    ) -> None:
        """Settle a download: keep the bytes really sent, give the download back if a
        FULL download did not complete, and free its place among those in flight. With
        ``event``, its log row goes to the store in the same trip."""
        uncount = access is Access.FULL and not completed
        if event is None:
            self.store.end_download(link.id, sent - reserved, uncount)
        else:
            self.store.end_download_logged(link.id, sent - reserved, uncount, event)
        if ticket is not None:
            self.bandwidth.give_back(ticket, reserved, sent)

    def usage(self) -> Usage:
        """Bytes served today against the daily budget, downloads in flight against the
        cap, and bytes per day for the last 30 days."""
        return self.bandwidth.usage()

    def record(self, event: DownloadEvent) -> None:
        """Append a request to the download log."""
        self.store.add_event(event)

    def file_path(self, link: Link) -> Path:
        """The file a link serves. Raises FileMissing if it was removed since."""
        return self.catalog.resolve(link.file)

    @property
    def _default_rate(self) -> int | None:
        default = self.settings.default_link_rate
        return None if default is None else int(default)

    def _in_grace(self, exc: LinkExpired) -> bool:
        return self.clock() <= exc.expired_at.timestamp() + self.settings.resume_grace

    def _lifetime(self, lifetime: str | int | None) -> int:
        if lifetime is None:
            return self.settings.default_lifetime
        seconds = parse_lifetime(lifetime)
        if seconds > self.settings.max_lifetime:
            raise InvalidInput(
                f"The longest lifetime allowed is {format_lifetime(self.settings.max_lifetime)}"
                " (SESAME_MAX_LIFETIME)."
            )
        return seconds


def _usable(link: Link, may_be_used_up: bool = False) -> Link:
    if link.revoked_at is not None:
        raise LinkRevoked(link.id, utc(link.revoked_at))
    limit = link.max_downloads
    if limit is not None and link.downloads >= limit and not may_be_used_up:
        raise LinkExhausted(link.id, limit)
    return link


def _check_limit(max_downloads: int | None) -> None:
    if max_downloads is not None and max_downloads < 1:
        raise InvalidInput("A download limit must be at least 1 (or none at all).")


def _cooldown(value: str | int) -> int:
    if str(value).strip() in ("0", "0s"):
        return 0
    return parse_lifetime(value)


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()
    if len(cleaned) > MAX_TEXT:
        raise InvalidInput(f"The {what} is longer than {MAX_TEXT} characters.")
    return cleaned or None
