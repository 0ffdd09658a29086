"""The errors Sesame raises: one root, and subclasses that carry what happened."""

from __future__ import annotations

from datetime import datetime


class SesameError(Exception):
    """Root of every error Sesame raises on purpose; ``str()`` is a sentence for a person."""


class ConfigError(SesameError):
    """The settings cannot be used as they are."""


class InvalidInput(SesameError):
    """A value given by the owner (a lifetime, a limit, a name) is not acceptable."""


class LinkError(SesameError):
    """A link cannot be used to download. ``code`` names the reason for machines."""

    code = "invalid"

    def __init__(self, message: str, link_id: str | None = None) -> None:
        super().__init__(message)
        self.link_id = link_id


class LinkInvalid(LinkError):
    """The token is not one Sesame signed, or names no link."""

    code = "invalid"

    def __init__(self, message: str = "This is not a valid link.") -> None:
        super().__init__(message)


class LinkExpired(LinkError):
    """The link's lifetime is over; ``expired_at`` says when it ended."""

    code = "expired"

    def __init__(self, link_id: str, expired_at: datetime) -> None:
        super().__init__(f"This link expired at {expired_at:%Y-%m-%d %H:%M:%S} UTC.", link_id)
        self.expired_at = expired_at


class LinkRevoked(LinkError):
    """The owner revoked the link at ``revoked_at``."""

    code = "revoked"

    def __init__(self, link_id: str, revoked_at: datetime) -> None:
        super().__init__("This link was revoked by its owner.", link_id)
        self.revoked_at = revoked_at


class LinkExhausted(LinkError):
    """The link has been downloaded ``max_downloads`` times."""

    code = "exhausted"

    def __init__(self, link_id: str, max_downloads: int) -> None:
        noun = "download" if max_downloads == 1 else "downloads"
        super().__init__(f"This link has used up its {max_downloads} {noun}.", link_id)
        self.max_downloads = max_downloads


class Unavailable(SesameError):
    """The gateway refuses a request to protect the owner's bandwidth; it may be tried again
    in ``retry_after`` seconds. ``code`` names the reason for machines."""

    code = "busy"
    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class TooBusy(Unavailable):
    """As many downloads as SESAME_MAX_CONCURRENT_DOWNLOADS allows are running already."""

    code = "busy"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"The server is serving as many downloads as it allows ({limit}); "
            f"try again in {retry_after} seconds.",
            retry_after,
        )
        self.limit = limit


class RateLimited(Unavailable):
    """One client asked for downloads more often than SESAME_RATE_LIMIT allows."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; try again in {retry_after} seconds.", retry_after)


class BudgetSpent(Unavailable):
    """Today's SESAME_DAILY_EGRESS is spent; new downloads wait until ``resets_at``."""

    code = "budget"

    def __init__(self, resets_at: datetime, retry_after: int) -> None:
        super().__init__(
            f"Today's download allowance is used up; it resets at {resets_at:%Y-%m-%d %H:%M} UTC.",
            retry_after,
        )
        self.resets_at = resets_at


class StoreUnavailable(SesameError):
    """The store (the SQLite file, Redis) failed or did not answer in time while doing
    ``operation``; ``reason`` is the cause in the driver's words. Nothing is wrong with the
    request: it may be tried again in ``retry_after`` seconds."""

    code = "unavailable"
    status = 503

    def __init__(self, operation: str, reason: str, retry_after: int = 5) -> None:
        super().__init__(f"The link store is not available right now ({reason}).")
        self.operation = operation
        self.reason = reason
        self.retry_after = max(1, retry_after)


class LinkNotFound(SesameError):
    """No link has the id the owner gave."""

    def __init__(self, link_id: str) -> None:
        super().__init__(f"There is no link with id {link_id!r}.")
        self.link_id = link_id


class FileMissing(SesameError):
    """``name`` is not a shareable file inside the files folder."""

    def __init__(self, name: str, reason: str = "no such file") -> None:
        super().__init__(f"{name!r} is not a file you can share ({reason}).")
        self.name = name
        self.reason = reason


class FileExists(SesameError):
    """An upload would overwrite ``name``; the owner must choose."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A file named {name!r} already exists.")
        self.name = name


class UploadRejected(SesameError):
    """An upload was refused (too large, unusable name); nothing was written."""


class RuleNotFound(SesameError):
    """No keyword rule matches the keyword the owner gave."""

    def __init__(self, keyword: str) -> None:
        super().__init__(f"There is no rule for the keyword {keyword!r}.")
        self.keyword = keyword


class RuleExists(InvalidInput):
    """A rule for the keyword exists already; the owner must replace or remove it."""

    def __init__(self, keyword: str) -> None:
        super().__init__(
            f"A rule for the keyword {keyword!r} exists already; remove it first or replace it."
        )
        self.keyword = keyword


class ApiKeyNotFound(SesameError):
    """No API key has the id the owner gave."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"There is no API key with id {key_id!r}.")
        self.key_id = key_id


class ApiKeyInvalid(SesameError):
    """A request's API key is missing, unknown or revoked."""

    def __init__(self, message: str = "A valid API key is needed.") -> None:
        super().__init__(message)


class SchemaTooNew(SesameError):
    """The store was written by a newer Sesame than this one: ``version`` is its schema
    version, ``known`` the newest this code knows."""

    def __init__(self, where: str, version: int, known: int) -> None:
        super().__init__(
            f"The store {where} was written by a newer version of Sesame (schema {version}; "
            f"this one knows up to {known}): upgrade Sesame, or restore a backup made by "
            "this version."
        )
        self.where = where
        self.version = version
        self.known = known


class BackupError(SesameError):
    """A backup could not be written as asked (its file exists, the store backs itself up)."""
