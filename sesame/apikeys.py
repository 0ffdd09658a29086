"""API keys: made with ``secrets``, kept only as a SHA-256 digest and a short prefix."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "ssk_"
# 32 random bytes: a plain SHA-256 is enough to store a key this long, no slow hash needed.
KEY_BYTES = 32
SHOWN_CHARS = len(KEY_PREFIX) + 6
MAX_KEY_LENGTH = 200


def new_secret() -> str:
    """A fresh API key: ``ssk_`` and 43 URL-safe characters."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def digest(secret: str) -> str:
    """The SHA-256 of a key, hex: what the store keeps and looks keys up by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def prefix(secret: str) -> str:
    """The first characters of a key, enough to tell keys apart in a list."""
    return secret[:SHOWN_CHARS]


def looks_like_key(secret: str) -> bool:
    """True when ``secret`` has the shape of a Sesame key (cheap check before the store)."""
    return secret.startswith(KEY_PREFIX) and len(secret) <= MAX_KEY_LENGTH and secret.isascii()
