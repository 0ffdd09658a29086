"""Every message of every domain has its 中文 translation, with the same placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from sesame import i18n

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"dashboard": ["admin_ui"], "sesame": ["sesame", "gateway"]}
METHODS = [("**.py", "python")]


def _messages(domain: str) -> set[str]:
    found: set[str] = set()
    for folder in SOURCES[domain]:
        for _file, _line, message, _comments, _context in extract_from_dir(ROOT / folder, METHODS):
            # A plural's id is its singular (the catalog keys it so).
            found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_every_message_has_a_chinese_translation(domain: str) -> None:
    path = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{domain}.po"
    messages = _messages(domain)
    assert messages, f"no messages found for the {domain} domain"
    with path.open("rb") as po:
        catalog = read_po(po, locale="zh_CN")
    missing = sorted(
        m for m in messages if not (entry := catalog.get(m)) or not entry.string or entry.fuzzy
    )
    assert not missing, f"{path.name} lacks translations (run make messages): {missing[:20]}"
    problems = [(entry.id, errors) for entry, errors in catalog.check() if errors]
    assert not problems, problems


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,zh-Hans;q=0.5", "zh_CN"),
        ("zh-TW", "zh_CN"),
        ("de, en;q=0", "en"),
        ("en;q=0.2, zh;q=0.7", "zh_CN"),
        ("", "en"),
        ("!!!;q=x,,;", "en"),
    ],
)
def test_the_browsers_preference_picks_the_language(header: str, language: str) -> None:
    assert i18n.from_accept_language(header) == language


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"SESAME_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LANGUAGE": "fr:zh_CN", "LANG": "en_US.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "POSIX", "LANG": "zh_TW.UTF-8"}, "zh_CN"),
        ({}, "en"),
    ],
)
def test_the_terminal_picks_the_language(environ: dict[str, str], language: str) -> None:
    assert i18n.from_environment(environ) == language


def test_a_missing_catalog_falls_back_to_english() -> None:
    assert i18n.translations("xx", "sesame").gettext("Link") == "Link"
