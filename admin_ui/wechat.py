"""The WeChat page: keyword rules that answer a follower's message with a fresh link."""

from __future__ import annotations

import streamlit as st

from admin_ui import display, resources
from sesame import replies
from sesame.lifetimes import format_lifetime
from sesame.models import Rule
from sesame.service import Service


def render(service: Service) -> None:
    """The whole page: whether WeChat is connected, the rules, a form to add one."""
    st.title("WeChat keywords", anchor=False)
    display.notices()
    _connection(service)
    rules = service.rules()
    if rules:
        st.dataframe(_table(rules), hide_index=True, key="rules_table")
        _remove(service, rules)
    else:
        st.info("No keyword rules yet. Add the first one below, for example 芝麻开门.")
    _add(service)


def _connection(service: Service) -> None:
    settings = service.settings
    if settings.wechat_token is None:
        display.show(
            "info",
            "The WeChat endpoint is off. Set SESAME_WECHAT_TOKEN (and SESAME_WECHAT_APP_ID and"
            " SESAME_WECHAT_AES_KEY for safe mode) and restart the gateway.",
        )
        return
    mode = "safe mode (encrypted)" if settings.wechat_aes_key else "plaintext mode"
    st.caption(
        f"Server URL for the Official Account console: `{settings.public_url}/wechat` · {mode}"
    )


def _table(rules: list[Rule]) -> list[dict[str, object]]:
    return [
        {
            "keyword": rule.keyword,
            "file": rule.file,
            "lifetime": format_lifetime(rule.lifetime),
            "downloads": display.allowed(rule.max_downloads),
            "cool-down": format_lifetime(rule.cooldown) if rule.cooldown else "none",
            "landing page": rule.landing,
            "reply": "custom" if rule.template else "default",
        }
        for rule in rules
    ]


def _add(service: Service) -> None:
    files = [info.name for info in service.files()]
    st.subheader("Add a rule", anchor=False)
    if not files:
        st.caption("Put a file in the files folder (or upload one on the Share page) first.")
        return
    with st.form("rules_add", clear_on_submit=False):
        keyword = st.text_input("Keyword", placeholder="芝麻开门", key="rules_keyword")
        file = st.selectbox("File", files, key="rules_file")
        left, middle, right = st.columns(3)
        lifetime = left.text_input("Link lifetime", value="10m", key="rules_lifetime")
        limit = middle.number_input(
            "Downloads per link (0: no limit)", min_value=0, value=0, step=1, key="rules_limit"
        )
        cooldown = right.text_input(
            "Cool-down",
            placeholder="same as the lifetime",
            help="A sender who asks again within this time gets the same link back (0: never).",
            key="rules_cooldown",
        )
        landing = st.checkbox("Links open a landing page first", key="rules_landing")
        template = st.text_area(
            "Reply (optional)",
            placeholder=replies.DEFAULT_TEMPLATE,
            help="Placeholders: "
            + ", ".join(f"{{{name}}} {about}" for name, about in replies.PLACEHOLDERS.items()),
            key="rules_template",
        )
        replace = st.checkbox("Replace the rule if the keyword has one", key="rules_replace")
        if st.form_submit_button("Add rule", type="primary", key="rules_submit"):
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
                display.notify("success", f"Followers who send “{rule.keyword}” now get {file}.")
                st.rerun()


def _remove(service: Service, rules: list[Rule]) -> None:
    keyword: str = st.selectbox("Rule", [rule.keyword for rule in rules], key="rules_chosen")
    display.confirmed(
        "rules_remove",
        keyword,
        "Remove…",
        f"Stop answering “{keyword}”? Links already sent keep working.",
        "Yes, remove",
        lambda: f"Removed the rule for “{service.remove_rule(keyword).keyword}”.",
    )


if __name__ == "__main__":
    render(resources.service())
