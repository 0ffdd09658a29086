"""One link as the owner shares it: the URL with its copy button, the QR code (PNG and SVG to
download), its expiry, limit and recipient. Shown by the Share page and the Links page."""

from __future__ import annotations

from pathlib import PurePosixPath

import streamlit as st

from admin_ui import display
from admin_ui.language import _
from sesame import qr
from sesame.models import FileInfo, LinkStatus, SharedLink, human_size


def render(made: SharedLink, info: FileInfo | None, now: float, key: str) -> None:
    """The card, in a container keyed ``{key}_result``; its buttons ``{key}_qr_png``, ..."""
    link = made.link
    stem = PurePosixPath(link.file).stem or "link"
    png = qr.png(made.url)
    with st.container(border=True, key=f"{key}_result"):
        st.markdown(_("**Link to {file}**").format(file=display.plain(link.file)))
        st.code(made.url, language=None, wrap_lines=True)
        code, about = st.columns([2, 3], vertical_alignment="center")
        code.image(png, caption=_("Scan to download"), width=220)
        with about:
            _facts(made, info, now)
            st.download_button(
                _("QR code (PNG)"),
                png,
                file_name=f"{stem}-qr.png",
                mime="image/png",
                icon=":material/download:",
                on_click="ignore",
                key=f"{key}_qr_png",
            )
            st.download_button(
                _("QR code (SVG)"),
                qr.svg(made.url),
                file_name=f"{stem}-qr.svg",
                mime="image/svg+xml",
                icon=":material/download:",
                on_click="ignore",
                key=f"{key}_qr_svg",
            )


def _facts(made: SharedLink, info: FileInfo | None, now: float) -> None:
    link, lang = made.link, display.here()
    until = display.moment_with_zone(link.expires_at, display.zone())
    st.markdown(_("**Expires** {when}").format(when=until))
    status = link.status(now)
    if status is LinkStatus.ACTIVE:
        st.caption(_("in {span}").format(span=display.span(link.expires_at - now, lang)))
    else:
        st.caption(_("This link is {status}.").format(status=display.status(status)))
    st.markdown(
        _("**Downloads** {allowed}").format(allowed=display.allowed(link.max_downloads, lang))
    )
    if info is not None:
        st.markdown(_("**Size** {size}").format(size=human_size(info.size)))
    if link.rate:
        st.markdown(_("**Speed cap** {rate}/s").format(rate=human_size(link.rate)))
    if link.recipient:
        st.markdown(_("**For** {recipient}").format(recipient=display.plain(link.recipient)))
