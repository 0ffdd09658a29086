"""The seed's design as a bare Starlette app: check an itsdangerous token, send one file.

No store, no counting, no log of its own: the floor Sesame's download path is compared with.
Like the seed, it builds the serializer in the request and answers with a ``FileResponse``.
Started by the benchmark as ``uvicorn --factory bench.bare:create_app``.
"""

from __future__ import annotations

import os

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route


def create_app() -> Starlette:
    """The app for the secret in BENCH_SECRET and the file in BENCH_FILE; tokens live for
    BENCH_MAX_AGE seconds (the seed's 600 unless set; the benchmark sets a day, so that a
    long run never measures the seed's "expired" answer, which is also a 200)."""
    secret = os.environ["BENCH_SECRET"]
    path = os.environ["BENCH_FILE"]
    max_age = int(os.environ.get("BENCH_MAX_AGE", "600"))
    name = os.path.basename(path)

    async def get_file(request: Request) -> Response:
        serializer = URLSafeTimedSerializer(secret)
        try:
            serializer.loads(request.path_params["token"], max_age=max_age)["to_user"]
        except SignatureExpired:
            return JSONResponse({"status": "fail", "data": "expired token"})
        except BadSignature:
            return JSONResponse({"status": "fail", "data": "bad token"})
        return FileResponse(path, filename=name)

    return Starlette(routes=[Route("/api/get_file/{token}", get_file)])
