"""The API keys page: keys for bots and scripts that make links over HTTP."""

from __future__ import annotations

import streamlit as st

from admin_ui import display, resources
from admin_ui.language import _
from sesame.models import ApiKey, NewApiKey
from sesame.service import MAX_TEXT, Service

CREATED = "apikeys_created"  # session key: the key just made, shown this once


def render(service: Service) -> None:
    """The whole page: the keys, a form for a new one, and revocation."""
    st.title(_("API keys"), anchor=False)
    display.notices()
    st.caption(
        _(
            "Scripts make links with `POST {url}` and `Authorization: Bearer <key>`;"
            " see the README or /docs on the gateway."
        ).format(url=f"{service.settings.public_url}/api/links")
    )
    _create(service)
    keys = service.api_keys()
    if not keys:
        st.info(_("No API keys yet."))
        return
    tz = display.zone()
    st.dataframe(
        [
            {
                _("name"): key.name,
                _("key"): f"{key.prefix}…",
                _("created"): display.moment(key.created_at, tz),
                _("last used"): display.moment(key.last_used_at, tz) if key.last_used_at else "",
                _("status"): _("active") if key.active else _("revoked"),
                _("id"): key.id,
            }
            for key in keys
        ],
        hide_index=True,
        key="apikeys_table",
    )
    _revoke(service, [key for key in keys if key.active])


def _create(service: Service) -> None:
    with st.form("apikeys_new", clear_on_submit=True):
        name = st.text_input(
            _("New key for"),
            max_chars=MAX_TEXT,
            placeholder=_("backup script"),
            key="apikeys_name",
        )
        if st.form_submit_button(_("Create key"), type="primary", key="apikeys_submit"):
            with display.reported():
                st.session_state[CREATED] = service.create_api_key(name)
    created: NewApiKey | None = st.session_state.pop(CREATED, None)
    if created is not None:
        display.show(
            "success",
            _(
                "Key “{name}” made. Copy it now: it is not shown again, and"
                " Sesame keeps only its hash."
            ).format(name=created.api_key.name),
        )
        st.code(created.secret, language=None)


def _revoke(service: Service, active: list[ApiKey]) -> None:
    if not active:
        return
    by_id = {key.id: key for key in active}
    key_id: str = st.selectbox(
        _("Key"),
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} · {by_id[i].prefix}…",
        key="apikeys_chosen",
    )
    display.confirmed(
        "apikeys_revoke",
        key_id,
        _("Revoke…"),
        _("Revoke “{name}”? Scripts using it are refused from now on.").format(
            name=by_id[key_id].name
        ),
        _("Yes, revoke"),
        lambda: _("Revoked “{name}”.").format(name=service.revoke_api_key(key_id).name),
    )


if __name__ == "__main__":
    render(resources.service())
