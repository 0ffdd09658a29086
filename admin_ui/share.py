"""The Share page: pick or upload a file, choose how long and how often, get the link."""

from __future__ import annotations

import streamlit as st

from admin_ui import display, linkcard, resources, uploads
from admin_ui.language import N_, _
from sesame.errors import FileExists
from sesame.lifetimes import format_lifetime, parse_lifetime
from sesame.models import FileInfo, SharedLink, human_size
from sesame.service import MAX_TEXT, Service
from sesame.settings import Settings

PRESETS = {"10m": N_("10 minutes"), "1h": N_("1 hour"), "1d": N_("1 day"), "7d": N_("7 days")}
LIMITS = {"none": N_("No limit"), "once": N_("One-time"), "custom": N_("Custom…")}
CUSTOM = "custom"

FILE = "share_file"  # session keys
UPLOAD = "upload_file"
CONFLICT = "upload_conflict"  # the taken name an upload waits on
MADE = "share_made"  # the SharedLink made last in this session
FRESH = "share_fresh"  # the link just made is shown in a dialog (in view at once) until closed


def render(service: Service) -> None:
    """The whole page: the file, the options, the button, and the link once made."""
    st.title(_("Share a file"), anchor=False)
    files = {info.name: info for info in service.files()}
    file = _pick(files)
    _upload(service, files)
    display.notices()
    st.subheader(_("Link"), anchor=False)
    lifetime = _lifetime(service.settings)
    max_downloads = _limit()
    recipient, note = _people()
    rate = _rate(service.settings)
    landing = st.toggle(
        _("Landing page first"),
        key="share_landing",
        help=_(
            "Browsers see the file's name, size, SHA-256 and a countdown, with a download"
            " button, instead of downloading at once. The page itself never counts."
        ),
    )
    if st.button(
        _("Make link"),
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
            st.session_state[FRESH] = True
    made: SharedLink | None = st.session_state.get(MADE)
    if made is None:
        return
    show = _result
    if st.session_state.get(FRESH):  # the button is low on the page: a dialog is not
        # Drawn on every run until closed, so a rerun meanwhile never leaves it half drawn.
        dialog = st.dialog(_("Link ready"), width="medium", on_dismiss=_closed)
        show = dialog(_result)
    show(made, files.get(made.link.file), service.clock())


def _closed() -> None:
    """Widget callback: the dialog was closed; the link stays below the button."""
    st.session_state.pop(FRESH, None)


def _pick(files: dict[str, FileInfo]) -> str | None:
    if not files:
        st.info(_("No files yet: upload one, or put files in the files folder."))
        return None
    name: str = st.selectbox(
        _("File"),
        list(files),
        key=FILE,
        format_func=lambda n: f"{n} · {human_size(files[n].size)}",
    )
    info = files[name]
    when = display.moment(info.modified_at, display.zone())
    st.caption(
        _("{size} · modified {when} · SHA-256 `{sha256}`").format(
            size=human_size(info.size), when=when, sha256=info.sha256
        )
    )
    return name


def _upload(service: Service, files: dict[str, FileInfo]) -> None:
    limit = human_size(int(service.settings.max_upload_size))
    uploads.decorate(UPLOAD)
    st.file_uploader(
        _("Or add a file (up to {limit})").format(limit=limit),
        key=UPLOAD,
        max_upload_size=display.upload_limit_mb(service.settings),
        on_change=_save,
        args=(service, None, False),
        help=_("It is saved in the files folder; the limit is SESAME_MAX_UPLOAD_SIZE."),
    )
    taken = st.session_state.get(CONFLICT)
    if taken and st.session_state.get(UPLOAD) is not None:
        _conflict(service, taken, files.get(taken))


def _conflict(service: Service, taken: str, existing: FileInfo | None) -> None:
    about = ""
    if existing is not None:
        when = display.moment(existing.modified_at, display.zone())
        about = _(" ({size}, modified {when})").format(size=human_size(existing.size), when=when)
    display.show(
        "warning", _("A file named “{name}” already exists{about}.").format(name=taken, about=about)
    )
    serving = sum(item.link.file == taken for item in service.links())
    if serving:
        st.caption(
            _("Replacing it changes what its active links serve ({count}).").format(count=serving)
        )
    free = service.free_name(taken)
    replace, keep, cancel = st.columns(3)
    replace.button(
        _("Replace it"), key="upload_replace", on_click=_save, args=(service, taken, True)
    )
    keep.button(
        _("Save as “{name}”").format(name=free),
        key="upload_keep_both",
        on_click=_save,
        args=(service, free),
    )
    cancel.button(_("Cancel"), key="upload_cancel", on_click=st.session_state.pop, args=(CONFLICT,))


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
        size = human_size(info.size)
        if info.name != upload.name:
            added = _("Added “{name}” ({size}, from “{original}”). It is selected above.")
        else:
            added = _("Added “{name}” ({size}). It is selected above.")
        display.notify("success", added.format(name=info.name, size=size, original=upload.name))


def _lifetime(settings: Settings) -> str:
    presets = [p for p in PRESETS if parse_lifetime(p) <= settings.max_lifetime]
    default = next((p for p in presets if parse_lifetime(p) == settings.default_lifetime), CUSTOM)
    choice: str = st.segmented_control(
        _("Works for"),
        [*presets, CUSTOM],
        default=default,
        required=True,
        format_func=lambda option: _(PRESETS.get(option, LIMITS[CUSTOM])),
        key="share_lifetime",
    )
    if choice != CUSTOM:
        return choice
    return st.text_input(
        _("Custom lifetime"),
        value=format_lifetime(settings.default_lifetime) if default == CUSTOM else "",
        placeholder=_("like 45m, 3d or 1h30m"),
        help=_("At most {span} (SESAME_MAX_LIFETIME).").format(
            span=display.span(settings.max_lifetime, display.here())
        ),
        key="share_custom_lifetime",
    )


def _limit() -> int | None:
    choice = st.segmented_control(
        _("Downloads"),
        list(LIMITS),
        default="none",
        required=True,
        format_func=lambda option: _(LIMITS[option]),
        key="share_limit",
    )
    if choice == "once":
        return 1
    if choice == CUSTOM:
        count = st.number_input(
            _("Downloads allowed"), min_value=1, value=3, step=1, key="share_limit_count"
        )
        return int(count)
    return None


def _people() -> tuple[str | None, str | None]:
    left, right = st.columns(2)
    recipient = left.text_input(
        _("Recipient (optional)"),
        max_chars=MAX_TEXT,
        placeholder=_("who it is for"),
        key="share_to",
    )
    note = right.text_input(
        _("Note (optional)"), max_chars=MAX_TEXT, placeholder=_("only you see it"), key="share_note"
    )
    return recipient or None, note or None


def _rate(settings: Settings) -> str | None:
    default = settings.default_link_rate
    rate = st.text_input(
        _("Speed cap per download (optional)"),
        placeholder=_("like 500 KiB or 2 MiB a second"),
        value=human_size(int(default)) if default else "",
        key="share_rate",
        help=_(
            "Each download of this link is sent no faster than this, so one recipient "
            "cannot take all of your bandwidth. Empty or 0: as fast as the network allows."
        ),
    )
    return rate.strip() or "0"


def _result(made: SharedLink, info: FileInfo | None, now: float) -> None:
    linkcard.render(made, info, now, "share")
    st.markdown(_("**Share text** · 中文 and English, ready to paste"))
    st.code(display.share_text(made, info, display.zone()), language=None, wrap_lines=True)


if __name__ == "__main__":
    render(resources.service())
