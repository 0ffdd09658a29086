"""The WeChat page: keyword rules that answer a follower's message with a fresh link."""

from __future__ import annotations

import streamlit as st

from admin_ui import display, resources
from admin_ui.language import _
from sesame import replies
from sesame.lifetimes import format_lifetime
from sesame.models import Rule
from sesame.service import Service

ADDED = "rules_added"  # session key: a rule was just added, so the form starts empty
FIELDS = [
    "rules_keyword",
    "rules_lifetime",
    "rules_limit",
    "rules_cooldown",
    "rules_landing",
    "rules_template",
    "rules_replace",
]


def render(service: Service) -> None:
    """The whole page: whether WeChat is connected, the rules, a form to add one."""
    st.title(_("WeChat keywords"), anchor=False)
    display.notices()
    _connection(service)
    rules = service.rules()
    if rules:
        st.dataframe(_table(rules), hide_index=True, key="rules_table")
        _remove(service, rules)
    else:
        st.info(_("No keyword rules yet. Add the first one below, for example 芝麻开门."))
    _add(service)


def _connection(service: Service) -> None:
    settings = service.settings
    if settings.wechat_token is None:
        display.show(
            "info",
            _(
                "The WeChat endpoint is off. Set SESAME_WECHAT_TOKEN (and SESAME_WECHAT_APP_ID and"
                " SESAME_WECHAT_AES_KEY for safe mode) and restart the gateway."
            ),
        )
        return
    mode = _("safe mode (encrypted)") if settings.wechat_aes_key else _("plaintext mode")
    st.caption(
        _("Server URL for the Official Account console: `{url}` · {mode}").format(
            url=f"{settings.public_url}/wechat", mode=mode
        )
    )


def _table(rules: list[Rule]) -> list[dict[str, object]]:
    return [
        {
            _("keyword"): rule.keyword,
            _("file"): rule.file,
            _("lifetime"): format_lifetime(rule.lifetime),
            _("downloads"): display.allowed(rule.max_downloads, display.here()),
            _("cool-down"): format_lifetime(rule.cooldown) if rule.cooldown else _("none"),
            _("landing page"): rule.landing,
            _("reply"): _("custom") if rule.template else _("default"),
        }
        for rule in rules
    ]


def _add(service: Service) -> None:
    files = [info.name for info in service.files()]
    st.subheader(_("Add a rule"), anchor=False)
    if not files:
        st.caption(_("Put a file in the files folder (or upload one on the Share page) first."))
        return
    if st.session_state.pop(ADDED, False):  # before the widgets exist, their state may go
        for key in FIELDS:
            st.session_state.pop(key, None)
    with st.form("rules_add", clear_on_submit=False):  # kept on an error, cleared once added
        keyword = st.text_input(_("Keyword"), placeholder="芝麻开门", key="rules_keyword")
        file = st.selectbox(_("File"), files, key="rules_file")
        left, middle, right = st.columns(3)
        lifetime = left.text_input(_("Link lifetime"), value="10m", key="rules_lifetime")
        limit = middle.number_input(
            _("Downloads per link (0: no limit)"), min_value=0, value=0, step=1, key="rules_limit"
        )
        cooldown = right.text_input(
            _("Cool-down"),
            placeholder=_("same as the lifetime"),
            help=_("A sender who asks again within this time gets the same link back (0: never)."),
            key="rules_cooldown",
        )
        landing = st.checkbox(_("Links open a landing page first"), key="rules_landing")
        template = st.text_area(
            _("Reply (optional)"),
            placeholder=replies.DEFAULT_TEMPLATE,
            help=_("Placeholders: {names}").format(
                names=", ".join(
                    f"{{{name}}} {about}" for name, about in replies.PLACEHOLDERS.items()
                )
            ),
            key="rules_template",
        )
        replace = st.checkbox(_("Replace the rule if the keyword has one"), key="rules_replace")
        if st.form_submit_button(_("Add rule"), type="primary", key="rules_submit"):
            with display.reported():
                rule = service.add_rule(
                    keyword,
                    file,
                    lifetime,
                    int(limit) or None,
                    cooldown.strip() or None,
                    template.strip() or None,
                    landing,
                    replace,
                )
                added = _("Followers who send “{keyword}” now get {file}.")
                display.notify("success", added.format(keyword=rule.keyword, file=file))
                st.session_state[ADDED] = True
                st.rerun()


def _remove(service: Service, rules: list[Rule]) -> None:
    keyword: str = st.selectbox(_("Rule"), [rule.keyword for rule in rules], key="rules_chosen")
    display.confirmed(
        "rules_remove",
        keyword,
        _("Remove…"),
        _("Stop answering “{keyword}”? Links already sent keep working.").format(keyword=keyword),
        _("Yes, remove"),
        lambda: _("Removed the rule for “{keyword}”.").format(
            keyword=service.remove_rule(keyword).keyword
        ),
    )


if __name__ == "__main__":
    render(resources.service())
