"""Logging for Sesame's entry points: one line per event on stderr, never a full token."""

from __future__ import annotations

import asyncio
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
    filter, no level or disabled logger on the way, its format unchanged (looked at in a
    few attribute reads). Otherwise, and if the write fails, through ``logging`` as
    ``logger.info``. logging's way costs about 17 µs a message on a slow machine, this
    about 2; the gateway writes one per request (bench/RESULTS.md).

    In an event loop, the messages of one turn of it are written together as it ends, in
    one write (the way is looked at once, for the first): a write to stderr is a system
    call each, and a busy gateway writes dozens of lines a turn."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        # The messages of this turn of each event loop, and the handler they go to.
        self._turns: dict[asyncio.AbstractEventLoop, tuple[_Handler, list[str]]] = {}

    def info(self, message: str) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        turn = None if loop is None else self._turns.get(loop)
        if turn is not None:
            turn[1].append(message)
            return
        handler = _sole_handler(self.logger)
        if handler is None or handler.lock is None:
            self.logger.info("%s", message)
        elif loop is None:
            self._write(handler, [message])
        else:
            self._turns[loop] = (handler, [message])
            loop.call_soon(self._end_turn, loop)

    def _end_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        handler, messages = self._turns.pop(loop)
        self._write(handler, messages)

    def _write(self, handler: _Handler, messages: list[str]) -> None:
        end = handler.terminator
        with handler.lock:  # type: ignore[union-attr]  # as StreamHandler.emit holds it
            try:
                handler.stream.write("".join(_INFO + message + end for message in messages))
                handler.stream.flush()
            except Exception:  # reported as logging reports it, and not written twice
                for message in messages:
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
