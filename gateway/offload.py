"""Offload to nginx: the gateway decides, nginx sends the file body.

With ``SESAME_OFFLOAD=nginx`` a good link is answered with an empty response carrying
``X-Accel-Redirect``: nginx (``deploy/nginx.conf``) then serves the file from an ``internal``
location with sendfile, Range and ETag. nginx keeps only some of the upstream's headers on an
internal redirect (Content-Type, Content-Disposition, Cache-Control among them); the security
headers are set again by the internal location.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from urllib.parse import quote

from starlette.responses import Response

from gateway.disposition import content_disposition
from sesame.catalog import media_type

# The internal locations of deploy/nginx.conf that alias SESAME_FILES_DIR: one answers the
# request's Range (a part the gateway planned), the other always sends the whole file.
INTERNAL_PREFIX = "/_sesame/files/"
WHOLE_PREFIX = "/_sesame/whole/"


def accel_redirect(name: str, headers: dict[str, str], whole: bool = False) -> Response:
    """The answer that hands the catalog's file ``name`` to nginx, to send in ``whole`` or as
    the request's Range says. Its internal locations open it without following symlinks
    (``disable_symlinks on``), as the gateway does."""
    relative = "/".join(p for p in PurePosixPath(name).parts if p not in ("", "."))
    headers = {
        **headers,
        "Content-Disposition": content_disposition(name),
        "X-Accel-Redirect": (WHOLE_PREFIX if whole else INTERNAL_PREFIX)
        + quote(relative, safe="/"),
    }
    return Response(media_type=media_type(name), headers=headers)


def nginx_etag(stat: os.stat_result) -> str:
    """The ETag nginx gives the file (its mtime and size in hex), which is what a client
    sends back in If-Range when nginx sent it the file."""
    return f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'
