"""One method per action on links, files, keyword rules and API keys. The CLI, the dashboard,
the gateway's API and its WeChat endpoint call these; none of them re-implements them."""

from __future__ import annotations

import contextlib
import secrets
import string
import time
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sesame import apikeys, export, replies
from sesame.activity import DayFile, LogFilter, LogRow, Totals
from sesame.bandwidth import parse_rate
from sesame.catalog import Catalog
from sesame.downloads import Downloads
from sesame.errors import (
    ApiKeyInvalid,
    ApiKeyNotFound,
    InvalidInput,
    LinkNotFound,
    RuleExists,
    RuleNotFound,
    StoreUnavailable,
)
from sesame.lifetimes import format_lifetime, parse_lifetime
from sesame.links import Clock, LinkSigner
from sesame.models import (
    ApiKey,
    DownloadEvent,
    FileInfo,
    Link,
    LinkStatus,
    NewApiKey,
    Rule,
    SharedLink,
    keyword_key,
)
from sesame.retention import Retention
from sesame.rollup import Rollup
from sesame.settings import Settings, signing_keys
from sesame.store import Store, open_store

MAX_TEXT = 500
MAX_DOWNLOADS = 1_000_000_000  # a limit anyone means; (limit + 1) x size stays in 64 bits
ALL_LINKS = 1 << 62  # a limit on links listed that is none
LINKS_SHOWN = 1000  # the newest links a listing shows unless asked for more
MAX_RATE = 1 << 40  # bytes a second (1 TiB/s): more is no cap at all
ID_ALPHABET = string.ascii_letters + string.digits
SEEN_WAIT = 0.05  # seconds a read waits to write first what this process holds back
KEY_USE_EVERY = 60  # seconds between notes of a key's use: `sesame apikey list` shows minutes


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
    downloads: Downloads = field(init=False)  # what the gateway does for each download
    retention: Retention = field(init=False)  # what the store forgets, swept by each process
    rollup: Rollup = field(init=False)  # the sums of the log, brought up to date by each process

    def __post_init__(self) -> None:
        self.downloads = Downloads(self.settings, self.store, self.signer, self.clock)
        self.retention = Retention(self.store, self.settings.retention, self.clock)
        self.rollup = Rollup(self.store, self.clock)

    @property
    def _seen(self) -> Store:
        """The store, for a read that sees every download this process let in: what the
        store holds back (see Store.begin_downloads) is written first, if it can be within
        SEEN_WAIT (a read never waits for a store that cannot be written)."""
        with contextlib.suppress(StoreUnavailable):  # it waits; the read need not
            self.store.flush(SEEN_WAIT)
        return self.store

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = time.time) -> Service:
        """Build everything the actions need from ``settings``."""
        signer = LinkSigner(signing_keys(settings), settings.max_lifetime, clock)
        store = open_store(settings.resolved_store_url, settings.retention, settings.store_timeout)
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
        cap = _check_rate(parse_rate(rate, self._default_rate))
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
        link = self._seen.get_link(link_id)
        if link is None:
            raise LinkNotFound(link_id)
        return self.shared(link)

    def links(self, include_inactive: bool = False) -> list[SharedLink]:
        """Links, newest first: only the active ones unless ``include_inactive``."""
        now = self.clock()
        return [
            self.shared(link)
            for link in self._seen.list_links()
            if include_inactive or link.status(now) is LinkStatus.ACTIVE
        ]

    def link_records(
        self, statuses: Collection[LinkStatus] = (), limit: int = ALL_LINKS
    ) -> list[Link]:
        """At most ``limit`` link records in ``statuses`` now (empty: all), newest first,
        without their URLs (``shared()`` makes one)."""
        return self._seen.links_page(self.clock(), [str(s) for s in statuses], (), limit)

    def link_counts(self) -> dict[LinkStatus, int]:
        """How many links are in each status now."""
        counts = self._seen.link_counts(self.clock())
        return {status: counts.get(str(status), 0) for status in LinkStatus}

    def links_page(
        self, statuses: Collection[LinkStatus] = (), files: Collection[str] = (), limit: int = 1000
    ) -> list[SharedLink]:
        """At most ``limit`` links, newest first, in ``statuses`` now and to ``files``
        (empty: any), with their URLs."""
        chosen = self._seen.links_page(self.clock(), [str(s) for s in statuses], files, limit)
        return [self.shared(link) for link in chosen]

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
        return self._seen.list_events(link_id, limit)

    # -- what the Links and Activity pages show, computed by the store --------------------

    def log_page(self, query: LogFilter, limit: int = 1000, offset: int = 0) -> list[LogRow]:
        """The log rows ``query`` selects, newest first: ``limit`` of them after ``offset``."""
        return self._seen.log_page(query, limit, offset)

    def log_rows(self, query: LogFilter) -> Iterator[LogRow]:
        """Every log row ``query`` selects, oldest first, read a little at a time."""
        return self._seen.log_rows(query)

    def log_totals(self, query: LogFilter) -> Totals:
        """What the log rows ``query`` selects add up to."""
        self.rollup.sweep_in_background()  # at most once a minute, off this call
        return self._seen.log_totals(query)

    def log_series(self, query: LogFilter, utc_offset: int = 0) -> list[DayFile]:
        """Downloads and bytes of the rows ``query`` selects, per local day and file."""
        self.rollup.sweep_in_background()
        return self._seen.log_series(query, utc_offset)

    def outcome_counts(self, link_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """For each of ``link_ids``, how many of its requests ended in each outcome."""
        return self._seen.outcome_counts(link_ids)

    def export_log(self, query: LogFilter, fmt: str) -> Iterator[str]:
        """The log rows ``query`` selects, oldest first, as lines of CSV or JSON Lines."""
        return export.lines(self._seen.log_rows(query), fmt)

    def backup(self, target: Path) -> None:
        """A consistent copy of the store in the new file ``target``. Raises BackupError."""
        self._seen.backup(target)

    def link_files(self) -> list[str]:
        """The files links were made for, each once."""
        return self.store.link_files()

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
        now = int(self.clock())
        # Also when the clock went back past it: a time still to come is no last use.
        if key.last_used_at is None or abs(now - key.last_used_at) >= KEY_USE_EVERY:
            self.store.touch_api_key(key.id, now)
        return key

    # -- what the faces share ----------------------------------------------------------------

    def shared(self, link: Link) -> SharedLink:
        """A record with its URL. The token is minted again from the record, not stored."""
        token = self.signer.mint(link.id, link.lifetime, link.created_at)
        return SharedLink(link, f"{self.settings.public_url}/d/{token}")

    @property
    def _default_rate(self) -> int | None:
        default = self.settings.default_link_rate
        return None if default is None else int(default)

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


def _check_limit(max_downloads: int | None) -> None:
    if max_downloads is not None and max_downloads < 1:
        raise InvalidInput("A download limit must be at least 1 (or none at all).")
    if max_downloads is not None and max_downloads > MAX_DOWNLOADS:
        raise InvalidInput(f"A download limit must be at most {MAX_DOWNLOADS:,} (or none at all).")


def _check_rate(rate: int | None) -> int | None:
    if rate is not None and rate > MAX_RATE:
        raise InvalidInput("A speed cap must be at most 1TiB per second (or none at all).")
    return rate


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
