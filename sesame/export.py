"""The download log as text to keep elsewhere: CSV or JSON Lines, a row at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sesame.activity import LogRow
from sesame.models import utc

FORMATS = ("csv", "jsonl")
FIELDS = [
    "time",
    "link",
    "file",
    "recipient",
    "client_ip",
    "user_agent",
    "status",
    "bytes",
    "outcome",
    "counted",
]


def record(row: LogRow) -> dict[str, Any]:
    """One row of the log as a flat record; ``time`` in ISO 8601 UTC."""
    event = row.event
    return {
        "time": utc(event.at).isoformat(),
        "link": event.link_id,
        "file": row.file,
        "recipient": row.recipient,
        "client_ip": event.client_ip,
        "user_agent": event.user_agent,
        "status": event.status,
        "bytes": event.bytes_sent,
        "outcome": str(event.outcome),
        "counted": event.counted,
    }


def lines(rows: Iterable[LogRow], fmt: str) -> Iterator[str]:
    """``rows`` as lines of ``fmt`` (one of FORMATS), each ending in a newline; CSV starts
    with a header."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(record(row), ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(record(row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
