"""Logging for Sesame's entry points: one line per event on stderr, never a full token."""

from __future__ import annotations

import logging

# How configure_logging writes a record, as uvicorn writes its own; an INFO one's start.
FORMAT = "%(levelname)s:     %(message)s"
_INFO = FORMAT % {"levelname": "INFO", "message": ""}


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (Lines knows it by its class)."""


def configure_logging(level: int = logging.INFO) -> None:
    """Send ``sesame.*`` records to stderr, unless the host program already set logging up."""
    # Nothing here logs the thread or process (see the logging HOWTO's "Optimization"):
    # not looking them up takes a few µs off every line, one per request at the gateway.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # nor the caller's file and line (the HOWTO's way to skip it)
    logger = logging.getLogger("sesame")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = _Handler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)


class Lines:
    """INFO messages of one logger, written as configure_logging's handler writes them,
    straight to its stream while it is all that would see them: no other handler, no
    filter, no level or disabled logger on the way, its format unchanged (looked at on
    every message, in a few attribute reads). Otherwise, and if the write fails, through
    ``logging`` as ``logger.info``. logging's way costs about 17 µs a message on a slow
    machine, this about 2; the gateway writes one per request (bench/RESULTS.md)."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def info(self, message: str) -> None:
        handler = _sole_handler(self.logger)
        if handler is None or handler.lock is None:
            self.logger.info("%s", message)
            return
        with handler.lock:  # as StreamHandler.emit holds it
            try:
                handler.stream.write(_INFO + message + handler.terminator)
                handler.stream.flush()
            except Exception:  # reported as logging reports it, and not written twice
                handler.handleError(
                    self.logger.makeRecord(
                        self.logger.name, logging.INFO, "", 0, "%s", (message,), None
                    )
                )


def _sole_handler(logger: logging.Logger) -> _Handler | None:
    """configure_logging's handler, if an INFO record of ``logger`` would reach that
    handler alone and be written with its format; else None. As logging decides: the
    logger's own filters and its effective level, then every handler up the loggers it
    propagates to, each with its own level and filters (their loggers' are not asked)."""
    if logger.manager.disable >= logging.INFO or logger.disabled or logger.filters:
        return None
    if logger.getEffectiveLevel() > logging.INFO or logging.getLevelName(logging.INFO) != "INFO":
        return None
    found: _Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or type(handler) is not _Handler or handler.filters:
                return None
            formatter = handler.formatter
            if handler.level > logging.INFO or type(formatter) is not logging.Formatter:
                return None
            if formatter._fmt != FORMAT or type(formatter._style) is not logging.PercentStyle:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found
