"""The dashboard's entry point (``streamlit run admin_ui/app.py``): sign the owner in, then
the Share, Links, Activity, WeChat and API keys pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from admin_ui import display, language, resources, signin
from admin_ui.language import N_, _
from sesame.errors import SesameError, StoreUnavailable
from sesame.service import Service

HERE = Path(__file__).resolve().parent
WIDE = {"links", "activity"}  # the pages of wide tables and charts
STORE_DOWN = N_(
    "The link store is not answering ({reason}). Links, rules and keys cannot be read or "
    "changed until it is back; reload this page in a moment."
)


def main() -> None:
    st.set_page_config(page_title="Sesame", page_icon=":material/key:")  # layout: below
    language.switch()
    try:
        service = resources.service()
    except SesameError as exc:  # settings it cannot use, a store newer than this code
        display.show("error", str(exc))
        st.stop()
    except StoreUnavailable as exc:
        display.show("error", _(STORE_DOWN).format(reason=exc.reason))
        st.stop()
    if not signin.gate(service.settings):
        st.stop()
    service.retention.sweep_in_background()  # at most once an hour, off this rerun
    page = st.navigation(
        [
            st.Page(HERE / "share.py", title=_("Share"), icon=":material/add_link:", default=True),
            st.Page(HERE / "links.py", title=_("Links"), icon=":material/link:"),
            st.Page(HERE / "activity.py", title=_("Activity"), icon=":material/monitoring:"),
            st.Page(HERE / "wechat.py", title=_("WeChat"), icon=":material/chat:"),
            st.Page(HERE / "apikeys.py", title=_("API keys"), icon=":material/key:"),
        ],
    )
    # Set once per run, before the page draws: a page that set it itself would flicker from
    # the entry's layout to its own on every rerun.
    st.set_page_config(layout="wide" if page.url_path in WIDE else "centered")
    _sidebar(service)
    try:
        page.run()
    except StoreUnavailable as exc:
        display.show("error", _(STORE_DOWN).format(reason=exc.reason))


def _sidebar(service: Service) -> None:
    settings = service.settings
    with st.sidebar:
        st.markdown("**Sesame** · 芝麻开门")
        url, folder = display.plain(settings.public_url), display.plain(str(settings.files_dir))
        st.caption(_("Links start with {url}").format(url=url))
        st.caption(_("Files folder: {folder}").format(folder=folder))
        st.button(_("Sign out"), key="signout", icon=":material/logout:", on_click=signin.sign_out)


main()
