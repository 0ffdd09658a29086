"""The dashboard's language: 中文 or English, from the browser's ``Accept-Language`` until the
owner picks one in the sidebar; the pick is kept in the URL (``?lang=zh_CN``), so it survives
a reload and a bookmark.

``_()`` translates into the language of the session running the page;
``N_()`` marks a message for ``make messages`` where it is defined, to be translated with
``_()`` where it is shown.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from sesame import i18n

KEY = "language"  # session key and widget key of the sidebar's switch
PARAM = "lang"  # the query parameter that keeps the owner's pick


def current() -> str:
    """The language of this session: the owner's pick, else the URL's, else the browser's
    (English outside a session: tables built in a test)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return i18n.DEFAULT
    picked = st.session_state.get(KEY)
    if picked in i18n.LANGUAGES:
        return str(picked)
    return _from_url() or i18n.from_accept_language(st.context.headers.get("Accept-Language"))


def _(message: str) -> str:
    """``message`` in this session's language."""
    return i18n.translations(current(), "dashboard").gettext(message)


def N_(message: str) -> str:  # noqa: N802 (gettext's own name for it)
    """``message`` itself: marks it for translation where it is shown."""
    return message


def switch() -> None:
    """The sidebar's language switch; keeps the pick in the URL on every run (a page change
    clears the query string)."""
    if st.session_state.get(KEY) not in i18n.LANGUAGES:
        st.session_state[KEY] = current()
    st.sidebar.segmented_control(
        "Language · 语言",
        list(i18n.LANGUAGES),
        format_func=i18n.NAMES.__getitem__,
        required=True,
        key=KEY,
        label_visibility="collapsed",
    )
    chosen = st.session_state[KEY]
    browser = i18n.from_accept_language(st.context.headers.get("Accept-Language"))
    if chosen != browser or _from_url():
        st.query_params[PARAM] = chosen


def _from_url() -> str | None:
    value = st.query_params.get(PARAM)
    return value if value in i18n.LANGUAGES else None
