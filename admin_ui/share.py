"""The Share page: pick or upload a file, choose how long and how often, get the link."""

from __future__ import annotations

from pathlib import PurePosixPath

import streamlit as st

from admin_ui import display, resources
from sesame import qr
from sesame.errors import FileExists
from sesame.lifetimes import format_lifetime, parse_lifetime
from sesame.models import FileInfo, LinkStatus, SharedLink, human_size
from sesame.service import MAX_TEXT, Service
from sesame.settings import Settings

PRESETS = {"10m": "10 minutes", "1h": "1 hour", "1d": "1 day", "7d": "7 days"}
LIMITS = {"none": "No limit", "once": "One-time", "custom": "Custom…"}
CUSTOM = "custom"

FILE = "share_file"  # session keys
UPLOAD = "upload_file"
CONFLICT = "upload_conflict"  # the taken name an upload waits on
MADE = "share_made"  # the SharedLink made last in this session


def render(service: Service) -> None:
    """The whole page: the file, the options, the button, and the link once made."""
    st.title("Share a file", anchor=False)
    files = {info.name: info for info in service.files()}
    file = _pick(files)
    _upload(service, files)
    display.notices()
    st.subheader("Link", anchor=False)
    lifetime = _lifetime(service.settings)
    max_downloads = _limit()
    recipient, note = _people()
    rate = _rate(service.settings)
    landing = st.toggle(
        "Landing page first",
        key="share_landing",
        help="Browsers see the file's name, size, SHA-256 and a countdown, with a download"
        " button, instead of downloading at once. The page itself never counts.",
    )
    if st.button(
        "Make link",
        key="share_submit",
        type="primary",
        icon=":material/add_link:",
        disabled=file is None,
        width="stretch",
    ):
        st.session_state.pop(MADE, None)
        with display.reported():
            st.session_state[MADE] = service.share(
                file, lifetime, max_downloads, recipient, note, landing=landing, rate=rate
            )
    made: SharedLink | None = st.session_state.get(MADE)
    if made is not None:
        _result(made, files.get(made.link.file), service.clock())


def _pick(files: dict[str, FileInfo]) -> str | None:
    if not files:
        st.info("No files yet: upload one, or put files in the files folder.")
        return None
    name: str = st.selectbox(
        "File",
        list(files),
        key=FILE,
        format_func=lambda n: f"{n} · {human_size(files[n].size)}",
    )
    info = files[name]
    st.caption(
        f"{human_size(info.size)} · modified {display.moment(info.modified_at, display.zone())}"
        f" · SHA-256 `{info.sha256}`"
    )
    return name


def _upload(service: Service, files: dict[str, FileInfo]) -> None:
    limit = human_size(int(service.settings.max_upload_size))
    # Streamlit's own size hint rounds up (512 MiB reads "1GB"): the label says it exactly.
    st.html("<style>[data-testid=stFileUploaderDropzoneInstructions] {display: none}</style>")
    st.file_uploader(
        f"Or add a file (up to {limit})",
        key=UPLOAD,
        max_upload_size=display.upload_limit_mb(service.settings),
        on_change=_save,
        args=(service, None, False),
        help="It is saved in the files folder; the limit is SESAME_MAX_UPLOAD_SIZE.",
    )
    taken = st.session_state.get(CONFLICT)
    if taken and st.session_state.get(UPLOAD) is not None:
        _conflict(service, taken, files.get(taken))


def _conflict(service: Service, taken: str, existing: FileInfo | None) -> None:
    about = ""
    if existing is not None:
        when = display.moment(existing.modified_at, display.zone())
        about = f" ({human_size(existing.size)}, modified {when})"
    display.show("warning", f"A file named “{taken}” already exists{about}.")
    serving = sum(item.link.file == taken for item in service.links())
    if serving:
        st.caption(f"Replacing it changes what its {serving} active link(s) serve.")
    free = service.free_name(taken)
    replace, keep, cancel = st.columns(3)
    replace.button("Replace it", key="upload_replace", on_click=_save, args=(service, taken, True))
    keep.button(f"Save as “{free}”", key="upload_keep_both", on_click=_save, args=(service, free))
    cancel.button("Cancel", key="upload_cancel", on_click=st.session_state.pop, args=(CONFLICT,))


def _save(service: Service, name: str | None = None, overwrite: bool = False) -> None:
    """Widget callback: adds the uploaded file as ``name`` (default: its own name)."""
    st.session_state.pop(CONFLICT, None)
    upload = st.session_state.get(UPLOAD)
    if upload is None:
        return
    upload.seek(0)  # a retry after a conflict reads it again
    with display.reported(later=True):
        try:
            info = service.upload(name or upload.name, upload, overwrite)
        except FileExists as exc:
            st.session_state[CONFLICT] = exc.name
            return
        st.session_state[FILE] = info.name
        renamed = f" (from “{upload.name}”)" if info.name != upload.name else ""
        display.notify("success", f"Added “{info.name}”{renamed}. It is selected above.")


def _lifetime(settings: Settings) -> str:
    presets = [p for p in PRESETS if parse_lifetime(p) <= settings.max_lifetime]
    default = next((p for p in presets if parse_lifetime(p) == settings.default_lifetime), CUSTOM)
    choice: str = st.segmented_control(
        "Works for",
        [*presets, CUSTOM],
        default=default,
        required=True,
        format_func=lambda option: PRESETS.get(option, "Custom…"),
        key="share_lifetime",
    )
    if choice != CUSTOM:
        return choice
    return st.text_input(
        "Custom lifetime",
        value=format_lifetime(settings.default_lifetime) if default == CUSTOM else "",
        placeholder="like 45m, 3d or 1h30m",
        help=f"At most {display.span(settings.max_lifetime)} (SESAME_MAX_LIFETIME).",
        key="share_custom_lifetime",
    )


def _limit() -> int | None:
    choice = st.segmented_control(
        "Downloads",
        list(LIMITS),
        default="none",
        required=True,
        format_func=LIMITS.__getitem__,
        key="share_limit",
    )
    if choice == "once":
        return 1
    if choice == CUSTOM:
        count = st.number_input(
            "Downloads allowed", min_value=1, value=3, step=1, key="share_limit_count"
        )
        return int(count)
    return None


def _people() -> tuple[str | None, str | None]:
    left, right = st.columns(2)
    recipient = left.text_input(
        "Recipient (optional)", max_chars=MAX_TEXT, placeholder="who it is for", key="share_to"
    )
    note = right.text_input(
        "Note (optional)", max_chars=MAX_TEXT, placeholder="only you see it", key="share_note"
    )
    return recipient or None, note or None


def _rate(settings: Settings) -> str | None:
    default = settings.default_link_rate
    rate = st.text_input(
        "Speed cap per download (optional)",
        placeholder="like 500KiB or 2MB a second",
        value=default.human_readable(decimal=False) if default else "",
        key="share_rate",
        help="Each download of this link is sent no faster than this, so one recipient "
        "cannot take all of your bandwidth. Empty or 0: as fast as the network allows.",
    )
    return rate.strip() or "0"


def _result(made: SharedLink, info: FileInfo | None, now: float) -> None:
    link, tz = made.link, display.zone()
    stem = PurePosixPath(link.file).stem or "link"
    png = qr.png(made.url)
    with st.container(border=True, key="share_result"):
        st.markdown(f"**Link to {display.plain(link.file)}**")
        st.code(made.url, language=None, wrap_lines=True)
        code, about = st.columns([2, 3], vertical_alignment="center")
        code.image(png, caption="Scan to download", width=220)
        with about:
            st.markdown(f"**Expires** {display.moment_with_zone(link.expires_at, tz)}")
            status = link.status(now)
            if status is LinkStatus.ACTIVE:
                st.caption(f"in {display.span(link.expires_at - now)}")
            else:
                st.caption(f"This link is {status.value}.")
            st.markdown(f"**Downloads** {display.allowed(link.max_downloads)}")
            if link.rate:
                st.markdown(f"**Speed cap** {human_size(link.rate)}/s")
            if link.recipient:
                st.markdown(f"**For** {display.plain(link.recipient)}")
            st.download_button(
                "QR code (PNG)",
                png,
                file_name=f"{stem}-qr.png",
                mime="image/png",
                icon=":material/download:",
                on_click="ignore",
                key="share_qr_png",
            )
            st.download_button(
                "QR code (SVG)",
                qr.svg(made.url),
                file_name=f"{stem}-qr.svg",
                mime="image/svg+xml",
                icon=":material/download:",
                on_click="ignore",
                key="share_qr_svg",
            )
        st.markdown("**Share text** · 中文 and English, ready to paste")
        st.code(display.share_text(made, info, tz), language=None, wrap_lines=True)


if __name__ == "__main__":
    render(resources.service())
