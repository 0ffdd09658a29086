"""Logging for Sesame's entry points: one line per event on stderr, never a full token."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

# How configure_logging writes a record, as uvicorn writes its own; an INFO one's start.
FORMAT = "%(levelname)s:     %(message)s"
_INFO = FORMAT % {"levelname": "INFO", "message": ""}


Loop = asyncio.AbstractEventLoop


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs (Lines knows it by its class).

    It holds the lines Lines gives it in a turn of an event loop (``hold``) and writes them
    in one write as the turn ends; sooner, before any record of its own in that loop, so that
    none overtakes them; and on ``flush`` those of loops that no longer run (logging flushes
    every handler at exit), so that a loop closed before its turn ended loses none."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._held: dict[Loop, list[tuple[str, str]]] = {}  # (logger's name, message)

    def hold(self, loop: Loop, name: str, message: str) -> None:
        """Write ``message`` (of the logger ``name``) as this turn of ``loop`` ends. Called
        in ``loop``'s thread, the only one that adds to its lines: no lock on the way."""
        held = self._held.get(loop)
        if held is None:
            self._held[loop] = [(name, message)]
            loop.call_soon(self._release, loop)
        else:
            held.append((name, message))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._release(asyncio.get_running_loop())
        except RuntimeError:
            pass  # not in a loop: nothing held for it
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            # list() copies the keys at once: another loop's thread may add one meanwhile.
            for loop in [loop for loop in list(self._held) if not loop.is_running()]:
                if loop.is_closed():  # its turn will never end
                    self._release(loop)
                else:  # it may run again: what it adds meanwhile stays for its turn's end
                    held = self._held[loop]
                    count = len(held)
                    if count:
                        self.write_lines(held[:count])
                        del held[:count]
        super().flush()

    def _release(self, loop: Loop) -> None:
        with self.lock:  # type: ignore[union-attr]
            held = self._held.pop(loop, None)
            if held:
                self.write_lines(held)

    def write_lines(self, lines: list[tuple[str, str]]) -> None:
        """(logger's name, INFO message) pairs, in one write and one flush of the stream."""
        end = self.terminator
        with self.lock:  # type: ignore[union-attr]  # as StreamHandler.emit holds it
            try:
                self.stream.write("".join(_INFO + message + end for _, message in lines))
                self.stream.flush()
            except Exception:  # reported as logging reports it, and not written twice
                for name, message in lines:
                    record = logging.LogRecord(name, logging.INFO, "", 0, "%s", (message,), None)
                    self.handleError(record)


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
        # The handler found for this turn of each event loop (forgotten as the turn ends).
        self._turns: dict[Loop, _Handler] = {}

    def info(self, message: str) -> None:
        try:
            loop: Loop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        handler = None if loop is None else self._turns.get(loop)
        if handler is None:
            handler = _sole_handler(self.logger)
            if handler is None or handler.lock is None:
                self.logger.info("%s", message)
                return
            if loop is not None:
                self._begin_turn(loop, handler)
        if loop is None:
            handler.write_lines([(self.logger.name, message)])
        else:
            handler.hold(loop, self.logger.name, message)

    def _begin_turn(self, loop: Loop, handler: _Handler) -> None:
        if self._turns:  # a turn that never ended: its loop was closed first
            for closed in [other for other in list(self._turns) if other.is_closed()]:
                self._turns.pop(closed, None)
        self._turns[loop] = handler
        loop.call_soon(self._turns.pop, loop, None)


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
