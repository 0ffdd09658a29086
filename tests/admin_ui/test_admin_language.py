"""The dashboard in 中文 and English: the catalog's translations keep every placeholder, the
address's ``?lang=`` and the sidebar's switch choose the language, and the README shows the
screenshots it names."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.pofile import read_po
from streamlit.testing.v1 import AppTest

from admin_ui import language
from sesame import i18n
from tests.support import REPO

CATALOG = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "dashboard.po"


def _names(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def _entries() -> list[tuple[str, str]]:
    with CATALOG.open("rb") as po:
        return [(m.id, m.string) for m in read_po(po, locale="zh_CN") if m.id]


@pytest.mark.parametrize(("english", "chinese"), _entries())
def test_translations_keep_their_placeholders(english: str, chinese: str) -> None:
    """A translation has the same ``{names}`` as its message, so ``format()`` fills both."""
    assert _names(chinese) == _names(english)
    assert not re.search(r"[A-Za-z]{4,}", re.sub(r"\{\w+\}|`[^`]*`|SESAME_\w+", "", chinese)) or (
        english in chinese or "User-Agent" in chinese or "README" in chinese or "Sesame" in chinese
    ), f"English left in {chinese!r}"


def test_the_address_chooses_the_language(signed_in: AppTest) -> None:
    """``?lang=zh_CN`` shows the dashboard in Chinese, whatever the browser prefers."""
    signed_in.query_params[language.PARAM] = "zh_CN"
    signed_in.session_state[language.KEY] = None
    signed_in.run()
    assert signed_in.title[0].value == "分享文件"
    assert signed_in.button(key="share_submit").label == "生成链接"


def test_the_switch_changes_the_language_and_keeps_it(signed_in: AppTest) -> None:
    """Picking English in the sidebar after 中文 turns the page English and puts the pick in
    the address, where a reload finds it."""
    signed_in.segmented_control(key=language.KEY).set_value("zh_CN").run()
    assert signed_in.title[0].value == "分享文件"
    assert signed_in.query_params[language.PARAM] == "zh_CN"
    signed_in.segmented_control(key=language.KEY).set_value("en").run()
    assert signed_in.title[0].value == "Share a file"
    assert signed_in.query_params[language.PARAM] == "en"


def test_outside_a_session_it_is_english() -> None:
    """Tables built outside a page (tests, scripts) are in the source language."""
    assert language.current() == "en"
    assert language._("Wrong password.") == "Wrong password."


def test_the_readme_shows_screenshots_that_exist() -> None:
    """Every screenshot the README shows is in the repository, in both languages."""
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"\]\((docs/screenshots/[^)]+\.png)\)", readme)
    assert {name.split("/")[-1].split("-")[0] for name in shown} == {"en", "zh_CN"}
    for name in shown:
        assert (REPO / name).stat().st_size > 10_000, name
