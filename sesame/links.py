"""Link tokens: the only module that touches itsdangerous.

A token signs ``[link id, lifetime in seconds]`` with its signing time, so every link carries
its own lifetime and can be judged with the secret alone, before any store is asked.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode
from itsdangerous.signer import Signer
from itsdangerous.timed import TimestampSigner

from sesame.errors import LinkExpired, LinkInvalid
from sesame.models import utc

SALT = "sesame.link.v1"
# A token minted on a clock up to this many seconds ahead of ours is still accepted.
# Tokens whose signature was checked, remembered with their claims: a popular link is checked
# once, not once per request (about 20 µs each, measured).
MAX_REMEMBERED = 4096
CLOCK_SKEW = 30
MAX_TOKEN_LENGTH = 512
# itsdangerous decodes base64 leniently: it skips characters outside the alphabet and takes
# "+" and "/" for "-" and "_". Only the URL-safe alphabet and the dots are allowed here, so
# one link has one spelling.
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")

Clock = Callable[[], float]
_SIGNER_KWARGS: dict[str, Any] = {"digest_method": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: which link, when it was signed, for how long."""

    link_id: str
    signed_at: int
    lifetime: int

    @property
    def expires_at(self) -> int:
        return self.signed_at + self.lifetime


class _Signer(TimestampSigner):
    """A TimestampSigner that derives each key once and can sign at a given time."""

    def __init__(self, *args: Any, timestamp: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timestamp = timestamp
        self._derived: dict[bytes | None, bytes] = {}

    def get_timestamp(self) -> int:
        return super().get_timestamp() if self.timestamp is None else self.timestamp

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        cache_key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        if cache_key not in self._derived:
            self._derived[cache_key] = super().derive_key(secret_key)
        return self._derived[cache_key]


class _Serializer(URLSafeTimedSerializer):
    """The serializer with its verifying signer built once, not once per call."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        super().__init__(list(keys), salt=SALT, signer=_Signer, signer_kwargs=_SIGNER_KWARGS)
        self._signer = super().make_signer()
        # Minting signs at a given time: one signer per thread, its key derived once (a new
        # signer per token derived it again, half of a token's cost on `sesame links --json`).
        self._minting = threading.local()

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        return self._signer

    def dumps_at(self, obj: Any, timestamp: int) -> str:
        signer: _Signer | None = getattr(self._minting, "signer", None)
        if signer is None:
            signer = _Signer(self.secret_keys, salt=SALT, **_SIGNER_KWARGS)
            self._minting.signer = signer
        signer.timestamp = timestamp
        return signer.sign(self.dump_payload(obj)).decode("ascii")


class LinkSigner:
    """Mints and verifies link tokens. Build one per process; it holds no per-request state.

    ``keys`` are oldest first: the last one signs, all of them verify (key rotation).
    ``max_lifetime`` caps every token, whatever lifetime it was signed with.
    """

    def __init__(self, keys: Sequence[bytes], max_lifetime: int, clock: Clock = time.time):
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.max_lifetime = max_lifetime
        self.clock = clock
        self._serializer = _Serializer(keys)
        self._good: dict[str, Claims] = {}

    def mint(self, link_id: str, lifetime: int, signed_at: int) -> str:
        """A token for ``link_id``, valid for ``lifetime`` seconds from ``signed_at``.

        The same arguments and keys always give the same token, so a link's URL can be
        shown again later without storing it.
        """
        return self._serializer.dumps_at([link_id, lifetime], signed_at)

    def verify(self, token: str) -> Claims:
        """The claims of a good token.

        Raises LinkInvalid for anything Sesame did not sign, and LinkExpired (with the
        link id and expiry time) for a token whose lifetime is over.
        """
        claims = self.read(token)
        now = self.clock()
        if claims.signed_at > now + CLOCK_SKEW:
            raise LinkInvalid("This link was signed in the future.")
        if now > claims.expires_at:
            raise LinkExpired(claims.link_id, utc(claims.expires_at))
        return claims

    def read(self, token: str) -> Claims:
        """The claims of a token with a good signature, whether or not it has expired."""
        claims = self._good.get(token)
        if claims is None:
            claims = self._check(token)
            if len(self._good) >= MAX_REMEMBERED:
                self._good.clear()
            self._good[token] = claims  # only tokens that verified, so no one can fill it
        return claims

    def _check(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token) or not _canonical(token):
            raise LinkInvalid()
        try:
            payload, signed_at = self._serializer.loads(token, return_timestamp=True)
        except BadData as exc:
            raise LinkInvalid() from exc
        except (OverflowError, ValueError, OSError) as exc:
            # A good signature on a time no datetime holds (past the year 9999): only a key
            # holder can make one, and it is still not a link.
            raise LinkInvalid() from exc
        return self._claims(payload, int(signed_at.timestamp()))

    def _claims(self, payload: Any, signed_at: int) -> Claims:
        match payload:
            case [str(link_id), int(lifetime)] if lifetime > 0:
                return Claims(link_id, signed_at, min(lifetime, self.max_lifetime))
        raise LinkInvalid()


def _canonical(token: str) -> bool:
    """True if the signature is spelled the one way Sesame writes it: base64 decoding
    ignores the spare bits of the last character, so four spellings decode alike."""
    signature = token.rpartition(".")[2]
    try:
        return base64_encode(base64_decode(signature)).decode("ascii") == signature
    except BadData:
        return False
