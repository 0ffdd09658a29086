"""Sign-in: one password (SESAME_ADMIN_PASSWORD), compared in constant time, each wrong one
answered more slowly, per client and for the whole process."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

from admin_ui import display
from admin_ui.language import _
from sesame.settings import Settings

log = logging.getLogger("sesame.admin")

SIGNED_IN = "signed_in"  # session key, True once this browser session gave the password


def matches(given: str, expected: str) -> bool:
    """Whether ``given`` is the password: UTF-8 bytes (NFC, so an ``é`` typed on a phone
    equals one typed on a laptop) compared in constant time."""
    return hmac.compare_digest(_digest(given), _digest(expected))


def _digest(text: str) -> bytes:
    # Comparing equal-length digests keeps even the password's length out of the timing.
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).digest()


@dataclass
class Throttle:
    """Wrong passwords per client. The n-th in a row is answered after ``base * 2**(n-1)``
    seconds (at most ``cap``); an attempt that comes sooner (another tab) waits its turn
    before it is checked. A quiet ``forget_after`` seconds, or the right password, start it
    over."""

    base: float = 0.5
    cap: float = 30.0
    forget_after: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # client address: (wrong passwords in a row, when it may try again)
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def wait(self, client: str) -> float:
        """Seconds before ``client`` may try again; 0 if it may now."""
        with self._lock:
            _, next_try = self._failures.get(client, (0, 0.0))
        return max(0.0, next_try - self.clock())

    def claim(self, client: str) -> float:
        """Seconds this attempt of ``client`` waits before it is checked (0 with no wrong
        password before it). Its turn is taken: attempts in parallel wait one after another."""
        now = self.clock()
        with self._lock:
            count, next_try = self._failures.get(client, (0, 0.0))
            if not count:
                return 0.0
            start = max(now, next_try)
            self._failures[client] = (count, start + self.base)
        return start - now

    def fail(self, client: str) -> tuple[int, float]:
        """Counts a wrong password; returns how many in a row and the delay it earned."""
        now = self.clock()
        with self._lock:
            count, next_try = self._failures.get(client, (0, now))
            count = 1 if now - next_try > self.forget_after else count + 1
            delay = min(self.cap, self.base * 2 ** (count - 1))
            self._failures[client] = (count, now + delay)
            if len(self._failures) > 10_000:  # one entry per client address: keep it bounded
                self._forget_quiet(now)
        return count, delay

    def forgive(self, client: str) -> None:
        """Starts ``client`` over, after the right password."""
        with self._lock:
            self._failures.pop(client, None)

    def _forget_quiet(self, now: float) -> None:
        for client, (_count, next_try) in list(self._failures.items()):
            if now - next_try > self.forget_after:
                del self._failures[client]


@st.cache_resource(show_spinner=False)
def throttle() -> Throttle:
    """The process's one Throttle: a new browser session does not start a client over."""
    return Throttle()


def gate(settings: Settings) -> bool:
    """True if this session is signed in. Otherwise draws the sign-in form (or, with no
    password configured, how to set one) and returns False: the caller shows nothing else."""
    if st.session_state.get(SIGNED_IN):
        return True
    st.title("Sesame", anchor=False)
    if settings.admin_password is None:
        _no_password()
        return False
    st.caption(_("芝麻开门 · the owner's dashboard"))
    with st.form("signin", clear_on_submit=True, border=False):
        given = st.text_input(_("Password"), type="password", key="signin_password")
        sent = st.form_submit_button(
            _("Sign in"), key="signin_submit", type="primary", icon=":material/login:"
        )
    if sent:
        _attempt(given, settings.admin_password.get_secret_value())
    return False


def sign_out() -> None:
    """Forgets everything this session held (a widget callback)."""
    log.info("signed out (client %s)", _client())
    st.session_state.clear()


def _attempt(given: str, expected: str) -> None:
    if not given:
        display.show("info", _("Type the password, then sign in."))
        return
    client, guard = _client(), throttle()
    wait = guard.claim(client)
    if wait > 0:
        with st.spinner(_("Checking…")):
            guard.sleep(wait)
    if matches(given, expected):
        guard.forgive(client)
        log.info("signed in (client %s)", client)
        st.session_state[SIGNED_IN] = True
        st.rerun()
    count, delay = guard.fail(client)
    log.warning("wrong password (client %s, %d in a row); next try in %.1f s", client, count, delay)
    with st.spinner(_("Checking…")):
        guard.sleep(delay)
    display.show("error", _("Wrong password."))


def _client() -> str:
    # Streamlit gives no address for loopback connections: they all count as one client.
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "local"


def _no_password() -> None:
    display.show("warning", _("The dashboard is locked: no password is set."))
    st.markdown(
        _("Set `SESAME_ADMIN_PASSWORD` in `.env` (or the environment) and restart, for example:")
    )
    st.code("SESAME_ADMIN_PASSWORD='a long passphrase' make run", language="sh")
