"""Offload to nginx: the gateway decides, nginx sends the file body.

With ``SESAME_OFFLOAD=nginx`` a good link is answered with an empty response carrying
``X-Accel-Redirect``: nginx (``deploy/nginx.conf``) then serves the file from an ``internal``
location with sendfile, Range and ETag. nginx keeps only some of the upstream's headers on an
internal redirect (Content-Type, Content-Disposition, Cache-Control among them); the security
headers are set again by the internal location.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.responses import Response

from gateway.disposition import content_disposition
from sesame.catalog import media_type

# The internal location of deploy/nginx.conf that aliases SESAME_FILES_DIR.
INTERNAL_PREFIX = "/_sesame/files/"


def accel_redirect(path: Path, root: Path, name: str, headers: dict[str, str]) -> Response:
    """The answer that hands ``path`` (inside ``root``) to nginx, named ``name``."""
    relative = path.relative_to(root).as_posix()
    headers = {
        **headers,
        "Content-Disposition": content_disposition(name),
        "X-Accel-Redirect": INTERNAL_PREFIX + quote(relative, safe="/"),
    }
    return Response(media_type=media_type(name), headers=headers)
