"""The WeChat keywords page and the API keys page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from sesame.errors import ApiKeyInvalid, RuleNotFound
from sesame.service import Service


def page(at: AppTest, name: str) -> AppTest:
    return at.switch_page(name).run()


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.success, *at.warning, *at.info])


def test_a_rule_added_on_the_page_answers_its_keyword(signed_in: AppTest, service: Service) -> None:
    """Filling the form adds the rule; the keyword then gets a link to the chosen file."""
    at = page(signed_in, "wechat.py")
    at.text_input(key="rules_keyword").input("芝麻开门")
    at.selectbox(key="rules_file").select("welcome.txt")
    at.number_input(key="rules_limit").set_value(1)
    at.button(key="rules_submit").click().run()
    rule = service.rule("芝麻开门")
    assert (rule.file, rule.lifetime, rule.max_downloads) == ("welcome.txt", 600, 1)
    shared = service.link_for_keyword("芝麻开门", "openid-1")
    assert shared is not None and shared.link.recipient == "openid-1"
    assert at.dataframe[0].value.iloc[0]["keyword"] == "芝麻开门"


def test_the_form_is_empty_after_a_rule_is_added(signed_in: AppTest, service: Service) -> None:
    """Once a rule is added the form starts over, so the next rule is not refused as existing;
    after a refusal the owner's values stay to be corrected."""
    at = page(signed_in, "wechat.py")
    at.text_input(key="rules_keyword").input("芝麻开门")
    at.text_area(key="rules_template").input("{url}")
    at.number_input(key="rules_limit").set_value(2)
    at.button(key="rules_submit").click().run()
    assert "now get" in texts(at)
    assert at.text_input(key="rules_keyword").value == ""
    assert at.text_area(key="rules_template").value == ""
    assert at.number_input(key="rules_limit").value == 0
    at.button(key="rules_submit").click().run()  # an empty keyword: refused, nothing kept
    assert [rule.keyword for rule in service.rules()] == ["芝麻开门"]
    at.text_input(key="rules_keyword").input("open sesame")
    at.text_area(key="rules_template").input("{nonsense}")
    at.button(key="rules_submit").click().run()
    assert "nonsense" in texts(at) and "exists" not in texts(at)
    assert at.text_input(key="rules_keyword").value == "open sesame"
    assert at.text_area(key="rules_template").value == "{nonsense}"


def test_a_bad_rule_is_refused_with_a_sentence(signed_in: AppTest, service: Service) -> None:
    """An unknown placeholder in the reply is refused on the page; no rule is kept."""
    at = page(signed_in, "wechat.py")
    at.text_input(key="rules_keyword").input("open")
    at.text_area(key="rules_template").input("{nonsense}")
    at.button(key="rules_submit").click().run()
    assert "nonsense" in texts(at)
    assert service.rules() == []


def test_removing_a_rule_asks_first(signed_in: AppTest, service: Service) -> None:
    """Remove asks; "Keep it" keeps the rule, "Yes, remove" removes it."""
    service.add_rule("芝麻开门", "welcome.txt")
    at = page(signed_in, "wechat.py")
    at.button(key="rules_remove").click().run()
    at.button(key="rules_remove_cancel").click().run()
    assert service.rule("芝麻开门")
    at.button(key="rules_remove").click().run()
    at.button(key="rules_remove_confirm").click().run()
    with pytest.raises(RuleNotFound):
        service.rule("芝麻开门")
    assert "Removed" in texts(at)


def test_a_new_api_key_is_shown_once_and_works(signed_in: AppTest, service: Service) -> None:
    """Creating a key shows its secret once; that secret authenticates; a rerun hides it."""
    at = page(signed_in, "apikeys.py")
    at.text_input(key="apikeys_name").input("backup script")
    at.button(key="apikeys_submit").click().run()
    secret = at.code[0].value
    assert service.authenticate(secret).name == "backup script"
    at.run()
    assert secret not in [code.value for code in at.code]


def test_revoking_an_api_key_asks_first(signed_in: AppTest, service: Service) -> None:
    """After "Yes, revoke" the key no longer authenticates."""
    made = service.create_api_key("bot")
    at = page(signed_in, "apikeys.py")
    at.button(key="apikeys_revoke").click().run()
    at.button(key="apikeys_revoke_confirm").click().run()
    with pytest.raises(ApiKeyInvalid):
        service.authenticate(made.secret)
    assert at.dataframe[0].value.iloc[0]["status"] == "revoked"


def test_share_can_make_a_landing_link(signed_in: AppTest, service: Service) -> None:
    """The landing toggle on the Share page makes a link with a landing page."""
    signed_in.toggle(key="share_landing").set_value(True)
    signed_in.button(key="share_submit").click().run()
    assert service.links()[0].link.landing
