"""What the dashboard keeps for the life of its process, shared by every browser session."""

from __future__ import annotations

import logging

import streamlit as st

from sesame.service import Service
from sesame.settings import load_settings


@st.cache_resource(show_spinner=False)
def service() -> Service:
    """The process's one Service, on settings read here, once.

    Raises ConfigError for unusable settings; nothing is cached then, so the next run retries.
    """
    _log_to_stderr("sesame")
    return Service.from_settings(load_settings())


def _log_to_stderr(name: str) -> None:
    # Streamlit configures only its own loggers; without this, sign-in lines would be lost.
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
