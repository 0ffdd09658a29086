"""The files the gateway sends, as it last saw them. A file's real path and stat are trusted
for a second, so a burst of downloads resolves and stats it once rather than per request
(about 40 µs, measured); a small file's bytes are kept and sent straight from the event loop,
with no thread hop per open, read and close (about 150 µs each for a 4 KiB file)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sesame.catalog import Catalog
from sesame.errors import FileMissing

FRESH = 1.0  # seconds a file's path and stat are trusted before they are looked at again
MAX_NAMES = 10_000  # files remembered at once; past it the memory starts over
MAX_BODIES = 64 * 1024 * 1024  # bytes of all kept bodies together; past it they start over

Version = tuple[int, int, int]  # size, mtime_ns, inode: a replaced file is another version


@dataclass(frozen=True)
class Served:
    """A file as the gateway sends it: where it is, its stat, and its bytes if kept."""

    path: Path
    stat: os.stat_result
    body: bytes | None


class Files:
    """The catalog's files for the gateway, each looked at again at most once per FRESH;
    bodies of files up to ``max_body`` bytes kept in memory, per version."""

    def __init__(
        self, catalog: Catalog, max_body: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.catalog = catalog
        self.max_body = max_body
        self.clock = clock
        self._seen: dict[str, tuple[float, Served]] = {}
        self._bodies: dict[Path, tuple[Version, bytes]] = {}
        self._body_bytes = 0

    def get(self, name: str) -> Served:
        """The file ``name`` of the catalog. Raises FileMissing (see Catalog.resolve)."""
        now = self.clock()
        seen = self._seen.get(name)
        if seen is not None and now - seen[0] < FRESH:
            return seen[1]
        path = self.catalog.resolve(name)
        try:
            stat = path.stat()
        except OSError:
            raise FileMissing(name) from None
        served = Served(path, stat, self._body(path, stat))
        if len(self._seen) >= MAX_NAMES:
            self._seen.clear()
        self._seen[name] = (now, served)
        return served

    def _body(self, path: Path, stat: os.stat_result) -> bytes | None:
        if stat.st_size > self.max_body:
            return None
        version = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        kept = self._bodies.get(path)
        if kept is not None and kept[0] == version:
            return kept[1]
        try:
            body = path.read_bytes()  # small: cheaper here than a hop to a worker thread
        except OSError:
            return None  # let the file response meet the problem and answer it
        if len(body) != stat.st_size:
            return None  # changed while being read: let the file response handle it
        self._keep(path, version, body)
        return body

    def _keep(self, path: Path, version: Version, body: bytes) -> None:
        if self._body_bytes + len(body) > MAX_BODIES:
            self._bodies.clear()
            self._body_bytes = 0
        old = self._bodies.pop(path, None)
        self._body_bytes += len(body) - (len(old[1]) if old else 0)
        self._bodies[path] = (version, body)
