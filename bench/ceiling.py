"""The ceiling: a bare ASGI app answering the 4 KiB file's bytes from memory, no routing, no
token, no store. What uvicorn itself costs per request; Sesame's small-file figures are read
as a share of it. Started by the benchmark as ``uvicorn --factory bench.ceiling:create_app``.
"""

from __future__ import annotations

import os
from typing import Any


def create_app() -> Any:
    """The app for the file in BENCH_FILE, read once."""
    with open(os.environ["BENCH_FILE"], "rb") as file:
        body = file.read()
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    message = {"type": "http.response.body", "body": body}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send(start)
            await send(message)

    return app
