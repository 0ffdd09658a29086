"""Logging for Sesame's entry points: one line per event on stderr, never a full token."""

from __future__ import annotations

import logging


def configure_logging(level: int = logging.INFO) -> None:
    """Send ``sesame.*`` records to stderr, unless the host program already set logging up."""
    # Nothing here logs the thread or process (see the logging HOWTO's "Optimization"):
    # not looking them up takes a few µs off every line, one per request at the gateway.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # nor the caller's file and line (the HOWTO's way to skip it)
    logger = logging.getLogger("sesame")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))  # as uvicorn
    logger.addHandler(handler)
    logger.setLevel(level)
