"""sesame.logs.Lines: a message written straight to configure_logging's handler reads as
logging would write it, and anything else on the way (a handler, a filter, a level, a
format of the operator's) gets it through logging."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from sesame import logs


@pytest.fixture
def family() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger set up as configure_logging sets up ``sesame`` (its handler on a stream of
    the test's, level INFO), apart from the root so that nothing else sees its records."""
    top = logging.getLogger(f"test-{uuid.uuid4().hex}")
    stream = io.StringIO()
    handler = logs._Handler(stream)
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    top.addHandler(handler)
    top.setLevel(logging.INFO)
    top.propagate = False
    yield top, stream
    top.removeHandler(handler)


def only_ours(top: logging.Logger) -> None:
    """Take pytest's capturing handlers off ``top`` (it adds them, as a test begins, to a
    logger that does not propagate): with one there, every message rightly goes through
    logging."""
    for handler in [h for h in top.handlers if not isinstance(h, logs._Handler)]:
        top.removeHandler(handler)


def test_a_message_reads_as_logging_writes_it(
    family: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Straight to the stream (logging is not asked), and the same line."""
    top, stream = family
    only_ours(top)
    child = top.getChild("access")
    child.info("%s", 'GET /d/abc… "x" 200 - ünïcode')
    through_logging = stream.getvalue()
    stream.truncate(0)
    stream.seek(0)

    def not_asked(*args: object, **kwargs: object) -> None:
        raise AssertionError("logging was asked")

    monkeypatch.setattr(logging.Logger, "_log", not_asked)
    logs.Lines(child.name).info('GET /d/abc… "x" 200 - ünïcode')
    monkeypatch.undo()
    assert stream.getvalue() == through_logging == 'INFO:     GET /d/abc… "x" 200 - ünïcode\n'


def test_anything_else_on_the_way_gets_it_through_logging(
    family: tuple[logging.Logger, io.StringIO],
) -> None:
    top, stream = family
    only_ours(top)
    child = top.getChild("access")
    lines = logs.Lines(child.name)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    other = Keep()
    top.addHandler(other)  # a handler of the operator's beside it: it sees the record
    lines.info("one")
    top.removeHandler(other)
    assert seen == ["one"] and stream.getvalue() == "INFO:     one\n"

    child.addFilter(lambda record: record.getMessage() != "two")  # a filter is asked
    lines.info("two")
    assert stream.getvalue() == "INFO:     one\n"
    child.filters.clear()

    child.setLevel(logging.WARNING)  # a level that drops INFO: nothing written
    lines.info("three")
    child.setLevel(logging.NOTSET)
    assert stream.getvalue() == "INFO:     one\n"

    handler = top.handlers[0]
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))  # another format
    lines.info("four")
    assert stream.getvalue().endswith(f"[{child.name}] four\n")


def test_a_failing_stream_is_reported_as_logging_reports_it(
    family: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    top, stream = family
    only_ours(top)
    stream.close()  # writing to it fails
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(top.handlers[0], "handleError", reported.append)
    logs.Lines(top.getChild("access").name).info("lost")
    assert [record.getMessage() for record in reported] == ["lost"]


def test_a_root_above_with_no_handler_of_its_own_is_no_obstacle(
    family: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As configure_logging leaves it under uvicorn: ``sesame`` propagates to a root at
    WARNING with no handler. A parent's level is not asked (logging does not ask it), so
    the message goes straight to the stream."""
    top, stream = family
    only_ours(top)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    top.propagate = True

    def not_asked(*args: object, **kwargs: object) -> None:
        raise AssertionError("logging was asked")

    monkeypatch.setattr(logging.Logger, "_log", not_asked)
    logs.Lines(top.getChild("access").name).info("straight")
    monkeypatch.undo()
    assert stream.getvalue() == "INFO:     straight\n"


def test_a_line_whose_flush_fails_is_reported_once_and_written_once(
    family: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    top, stream = family
    only_ours(top)

    def full(*args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(stream, "flush", full)
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(top.handlers[0], "handleError", reported.append)
    logs.Lines(top.getChild("access").name).info("once")
    assert [record.getMessage() for record in reported] == ["once"]
    assert stream.getvalue() == "INFO:     once\n"


def test_the_lines_of_one_turn_of_an_event_loop_leave_in_one_write(
    family: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an event loop, a turn's messages are written together as it ends, in order, in
    one write; the next turn's in another; nothing is held back once the loop is done."""
    top, stream = family
    only_ours(top)
    writes: list[str] = []
    monkeypatch.setattr(stream, "write", writes.append)
    lines = logs.Lines(top.getChild("access").name)

    async def two_turns() -> list[str]:
        lines.info("one")
        lines.info("two")
        during = list(writes)
        await asyncio.sleep(0)
        lines.info("three")
        return during

    assert asyncio.run(two_turns()) == []
    assert writes == ["INFO:     one\nINFO:     two\n", "INFO:     three\n"]


def test_no_record_overtakes_the_lines_held_for_its_turn(
    family: tuple[logging.Logger, io.StringIO],
) -> None:
    """A record through logging in the same turn (uvicorn's traceback of a failed request,
    say) is written after the lines held before it, and those after it follow it."""
    top, stream = family
    only_ours(top)
    lines = logs.Lines(top.getChild("access").name)

    async def one_turn() -> None:
        lines.info("GET /d/a… 200")
        top.getChild("gateway").error("the store failed")
        lines.info("GET /d/b… 503")

    asyncio.run(one_turn())
    assert stream.getvalue() == (
        "INFO:     GET /d/a… 200\nERROR:     the store failed\nINFO:     GET /d/b… 503\n"
    )


def stopped_as_it_logs(lines: logs.Lines, message: str) -> asyncio.AbstractEventLoop:
    """A new loop, stopped in the very turn it logged ``message``: that turn never ends."""
    loop = asyncio.new_event_loop()

    def last() -> None:
        lines.info(message)
        loop.stop()

    loop.call_soon(last)
    loop.run_forever()
    return loop


def test_a_loop_closed_before_its_turn_ended_loses_no_line(
    family: tuple[logging.Logger, io.StringIO],
) -> None:
    """A loop stopped and closed in the turn a line was held in never ends that turn: the
    line is written when the handler is next flushed (logging flushes every handler at
    exit), and the next loop's lines are held and written as ever."""
    top, stream = family
    only_ours(top)
    lines = logs.Lines(top.getChild("access").name)
    stopped_as_it_logs(lines, "the last line").close()
    assert stream.getvalue() == ""
    top.handlers[0].flush()
    assert stream.getvalue() == "INFO:     the last line\n"

    async def next_loop() -> None:
        lines.info("a new loop's line")

    asyncio.run(next_loop())
    assert stream.getvalue() == "INFO:     the last line\nINFO:     a new loop's line\n"
    assert all(not other.is_closed() for other in lines._turns)


def test_a_stopped_loop_s_lines_are_flushed_once_and_its_next_turns_go_on(
    family: tuple[logging.Logger, io.StringIO],
) -> None:
    """A loop stopped (not closed) in the turn a line was held in: a flush writes the line,
    the loop's turn ending later does not write it again, and its next lines are written."""
    top, stream = family
    only_ours(top)
    lines = logs.Lines(top.getChild("access").name)
    loop = stopped_as_it_logs(lines, "before the stop")
    top.handlers[0].flush()
    assert stream.getvalue() == "INFO:     before the stop\n"

    async def again() -> None:
        lines.info("after it")

    loop.run_until_complete(again())
    loop.close()
    assert stream.getvalue() == "INFO:     before the stop\nINFO:     after it\n"
