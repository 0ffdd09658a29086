"""Sign-in: only a password form until the right password, slower after each wrong one."""

from __future__ import annotations

import logging

import pytest
from streamlit.testing.v1 import AppTest

from admin_ui import signin
from admin_ui.signin import Throttle, matches
from tests.support import APP, PASSWORD, errors


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="signin_password").input(password)
    return at.button(key="signin_submit").click().run()


def test_only_the_password_form_before_sign_in(app: AppTest) -> None:
    """Before sign-in the page holds the password form and nothing of the dashboard."""
    app.run()
    assert [w.key for w in app.text_input] == ["signin_password"]
    assert [b.key for b in app.button] == ["signin_submit"]
    assert not app.selectbox and not app.dataframe and not app.sidebar.button
    assert not app.exception


def test_right_password_signs_in(app: AppTest, caplog: pytest.LogCaptureFixture) -> None:
    """The configured password, with non-ASCII characters, opens the Share page."""
    caplog.set_level(logging.INFO, "sesame.admin")
    sign_in(app.run(), PASSWORD)
    assert app.session_state[signin.SIGNED_IN] is True
    assert app.title[0].value == "Share a file"
    assert app.sidebar.button(key="signout")
    assert "signed in" in caplog.text
    assert PASSWORD not in caplog.text


def test_password_in_another_unicode_form_signs_in(app: AppTest) -> None:
    """A password typed decomposed (e + combining accent) equals the composed one."""
    decomposed = PASSWORD.replace("é", "e\u0301")
    assert decomposed != PASSWORD
    sign_in(app.run(), decomposed)
    assert app.title[0].value == "Share a file"


@pytest.mark.parametrize("wrong", ["芝麻开门", PASSWORD + " ", PASSWORD.upper(), "x" * 1000])
def test_wrong_password_is_refused(app: AppTest, slept: list[float], wrong: str) -> None:
    """Anything but the password (a prefix, a case change, more) leaves the form up."""
    sign_in(app.run(), wrong)
    assert signin.SIGNED_IN not in app.session_state
    assert [w.key for w in app.text_input] == ["signin_password"]
    assert errors(app) == ["Wrong password."]


def test_empty_password_is_not_an_attempt(app: AppTest, slept: list[float]) -> None:
    """Signing in with an empty field asks for the password and costs no delay."""
    sign_in(app.run(), "")
    assert signin.SIGNED_IN not in app.session_state
    assert "Type the password" in app.info[0].value
    assert slept == []


def test_wrong_passwords_are_slowed_down_and_logged(
    app: AppTest, slept: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """Each wrong password in a row waits twice as long as the one before, and is logged
    with the client but without the password."""
    signin.throttle().clock = lambda: 1000.0  # frozen: the delay never runs out by itself
    app.run()
    sign_in(app, "guess-1")
    assert errors(app) == ["Wrong password."]
    signin.throttle().clock = lambda: 1001.0
    sign_in(app, "guess-2")
    signin.throttle().clock = lambda: 1003.0
    sign_in(app, "guess-3")
    assert slept == [0.5, 1.0, 2.0]
    warnings = [r for r in caplog.records if r.name == "sesame.admin" and r.levelname == "WARNING"]
    assert len(warnings) == 3
    assert "3 in a row" in warnings[-1].getMessage()
    assert "guess" not in caplog.text


def test_a_new_session_does_not_reset_the_delay(slept: list[float]) -> None:
    """The delay is kept per client for the whole process: a fresh browser session that
    tries during it waits the rest of it, then its password is checked (no refusal)."""
    signin.throttle().clock = lambda: 1000.0
    first = AppTest.from_file(APP).run()
    sign_in(first, "guess")
    assert slept == [0.5]
    signin.throttle().clock = lambda: 1000.2
    second = AppTest.from_file(APP).run()
    sign_in(second, PASSWORD)
    assert slept == [0.5, pytest.approx(0.3)]
    assert second.session_state[signin.SIGNED_IN] is True
    assert not errors(second)


def test_attempts_in_parallel_wait_their_turn() -> None:
    """Attempts that come together during a delay are checked one after another."""
    throttle = Throttle(base=0.5, clock=lambda: 0.0)
    throttle.fail("a")
    assert [throttle.claim("a") for _ in range(3)] == [0.5, 1.0, 1.5]
    assert throttle.claim("b") == 0.0


def test_sign_out_forgets_the_session(signed_in: AppTest) -> None:
    """Sign-out brings back the password form and drops what the session held."""
    signed_in.sidebar.button(key="signout").click().run()
    assert signin.SIGNED_IN not in signed_in.session_state
    assert [w.key for w in signed_in.text_input] == ["signin_password"]


def test_without_a_password_the_dashboard_says_how_to_set_one(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no SESAME_ADMIN_PASSWORD: how to set one, and no form, nothing else."""
    monkeypatch.delenv("SESAME_ADMIN_PASSWORD")
    app.run()
    assert "no password is set" in app.warning[0].value
    assert "SESAME_ADMIN_PASSWORD" in app.code[0].value
    assert not app.text_input and not app.button and not app.sidebar.button
    app.session_state["anything"] = 1  # a later run still shows nothing else
    assert not app.run().text_input


def test_unusable_settings_are_one_sentence(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad settings show the variable and the problem, not a traceback, and no form."""
    monkeypatch.setenv("SESAME_PUBLIC_URL", "sesame.test")
    app.run()
    assert "SESAME_PUBLIC_URL" in errors(app)[0]
    assert not app.exception and not app.text_input


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [
        ("芝麻开门", "芝麻开门", True),
        ("Sésame", "Se\u0301same", True),
        ("芝麻开", "芝麻开门", False),
        ("", "a", False),
        ("A", "a", False),
    ],
)
def test_matches(given: str, expected: str, same: bool) -> None:
    """Passwords compare as NFC UTF-8 bytes."""
    assert matches(given, expected) is same


def test_throttle_doubles_up_to_the_cap() -> None:
    """Delays double per failure in a row, up to the cap; the right password starts over."""
    now = [0.0]
    throttle = Throttle(base=0.5, cap=4.0, clock=lambda: now[0])
    delays = [throttle.fail("a")[1] for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert throttle.wait("a") == 4.0
    assert throttle.wait("b") == 0.0
    throttle.forgive("a")
    assert throttle.wait("a") == 0.0
    assert throttle.fail("a") == (1, 0.5)


def test_throttle_forgets_after_a_quiet_hour() -> None:
    """A failure long after the last one counts as the first again."""
    now = [0.0]
    throttle = Throttle(clock=lambda: now[0])
    throttle.fail("a")
    throttle.fail("a")
    now[0] = 2 * 3600
    assert throttle.fail("a") == (1, 0.5)
