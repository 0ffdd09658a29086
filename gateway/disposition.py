"""The ``Content-Disposition`` header that keeps a file's real name on every client (RFC 6266)."""

from __future__ import annotations

import re
from urllib.parse import quote

from anyascii import anyascii

# RFC 8187 attr-char, less the alphanumerics quote() keeps anyway.
_ATTR_SAFE = "!#$&+-.^_`|~"
_UNSAFE_IN_QUOTES = re.compile(r'["\\\x00-\x1f\x7f%]')


def content_disposition(name: str, kind: str = "attachment") -> str:
    """``attachment; filename="<ASCII>"; filename*=UTF-8''<name>`` for a file called ``name``.

    ``filename=`` holds a transliteration (``芝麻.txt`` becomes ``ZhiMa.txt``) because curl
    reads only that parameter and aria2c drops the header when it holds raw UTF-8.
    """
    base = name.rsplit("/", 1)[-1]
    encoded = quote(base, safe=_ATTR_SAFE)
    return f"{kind}; filename=\"{ascii_fallback(base)}\"; filename*=UTF-8''{encoded}"


def ascii_fallback(name: str) -> str:
    """A readable ASCII version of ``name`` that is safe inside a quoted string."""
    ascii_name = anyascii(name)
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 else "_" for ch in ascii_name)
    ascii_name = _UNSAFE_IN_QUOTES.sub("_", ascii_name.replace('"', "'")).strip(" .")
    return ascii_name or "download"
