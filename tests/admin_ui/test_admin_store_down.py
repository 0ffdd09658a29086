"""The dashboard on a store that does not answer says so in one sentence, never a traceback."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from admin_ui import signin
from tests.support import errors, free_port


def test_redis_down_is_one_error(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With SESAME_STORE_URL on a Redis nobody listens on, the Links page shows an error box
    saying the store is not answering, and no exception."""
    monkeypatch.setenv("SESAME_STORE_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("SESAME_STORE_TIMEOUT", "0.3")
    app.session_state[signin.SIGNED_IN] = True
    app.run()
    app.switch_page("links.py").run()
    assert not app.exception
    assert any("store is not answering" in text for text in errors(app)), errors(app)
