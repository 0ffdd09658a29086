"""What the dashboard keeps for the life of its process, shared by every browser session."""

from __future__ import annotations

import streamlit as st

from sesame.logs import configure_logging
from sesame.service import Service
from sesame.settings import load_settings


@st.cache_resource(show_spinner=False)
def service() -> Service:
    """The process's one Service, on settings read here, once.

    Raises ConfigError for unusable settings; nothing is cached then, so the next run retries.
    """
    configure_logging()
    return Service.from_settings(load_settings())
