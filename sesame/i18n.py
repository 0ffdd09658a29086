"""Messages in 中文 and English: gettext catalogs under ``sesame/locale``, kept with Babel.

Each part of Sesame has a domain of its own: ``dashboard`` (``admin_ui``) and ``sesame`` (the
CLI and the gateway's pages). The source language is English; ``zh_CN`` is the translation.
Catalogs are read from their ``.po`` files at first use, so no compiled file can go stale.
``make messages`` extracts new messages into the catalogs; ``tests/test_i18n.py`` fails while
any message lacks a translation.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAINS = ("dashboard", "sesame")
LANGUAGES = ("en", "zh_CN")
DEFAULT = "en"
NAMES = {"en": "English", "zh_CN": "中文"}


def normalize(tag: str | None) -> str | None:
    """The language of ours that a tag such as ``zh-Hans-CN``, ``zh_TW.UTF-8`` or ``en-GB``
    asks for, or None when it asks for neither."""
    if not tag:
        return None
    tag = tag.split(".", 1)[0].split("@", 1)[0].strip()
    if tag in ("", "C", "POSIX", "*"):
        return None
    try:
        language = Locale.parse(tag, sep="-" if "-" in tag else "_").language
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    if language == "zh":
        return "zh_CN"
    return "en" if language == "en" else None


def from_accept_language(header: str | None) -> str:
    """The language a browser's ``Accept-Language`` prefers among ours (RFC 9110, 12.5.4)."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")[:32]):
        tag, _, params = part.partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        language = normalize(tag.strip())
        if language and 0 < quality <= 1:
            choices.append((-quality, position, language))
    return min(choices)[2] if choices else DEFAULT


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language of a terminal: ``SESAME_LANG``, then gettext's ``LANGUAGE``, ``LC_ALL``,
    ``LC_MESSAGES`` and ``LANG``; the first that names a language we have wins."""
    environ = os.environ if environ is None else environ
    for name in ("SESAME_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for tag in environ.get(name, "").split(":"):
            language = normalize(tag)
            if language:
                return language
    return DEFAULT


@cache
def translations(language: str, domain: str) -> gettext.NullTranslations:
    """The catalog of one domain in one language (English, the source, when there is none)."""
    if language not in LANGUAGES or domain not in DOMAINS:
        language = DEFAULT
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
