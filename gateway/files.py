"""The files the gateway sends, each opened once per request beneath the files folder
without following links (Catalog.open), and sent from that descriptor: a file or folder
swapped for a symlink at any moment never sends a byte from outside the folder.

A small file's bytes are kept per version (device, inode, size, times), so a burst of
downloads reads it once. A request that can only be answered with the whole file is sent
the kept bytes without opening it again when the name still leads to that very version:
one ``lstat``, not an open, a stat and two closes. A symlink in its place is not followed
and is no regular file; a path through a folder swapped for a symlink may reach another
file, but only the one kept (the same device and inode) passes, and its bytes were read
from inside the folder. Anything else is opened as above.
"""

from __future__ import annotations

import os
import stat as stat_kind
from dataclasses import dataclass
from email.utils import formatdate

from sesame.catalog import Catalog

MAX_BODIES = 64 * 1024 * 1024  # bytes of all kept bodies together; past it they start over

Version = tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns


@dataclass(frozen=True, slots=True)
class Opened:
    """One request's open file: its descriptor (the request closes it; -1 for a kept body
    sent without opening the file), its stat, its validators, and its bytes if they are
    kept."""

    name: str
    fd: int
    stat: os.stat_result
    body: bytes | None

    @property
    def size(self) -> int:
        return self.stat.st_size

    @property
    def version(self) -> Version:
        return _version(self.stat)

    @property
    def etag(self) -> str:
        return etag(self.version)

    @property
    def last_modified(self) -> str:
        return last_modified(self.version)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


class Files:
    """The catalog's files for the gateway; bodies of files up to ``max_body`` bytes kept."""

    def __init__(self, catalog: Catalog, max_body: int) -> None:
        self.catalog = catalog
        self.max_body = max_body
        self._bodies: dict[str, tuple[Version, bytes, str]] = {}
        self._body_bytes = 0

    def open(self, name: str, whole: bool = False) -> Opened:
        """The file ``name`` of the catalog, open. Raises FileMissing (see Catalog.open).
        ``whole``: only the whole body will be sent; a kept body of the version the name
        still leads to then comes without a descriptor (see the module's docstring)."""
        if whole and (kept := self._kept(name)) is not None:
            return kept
        fd, stat = self.catalog.open(name)
        try:
            return Opened(name, fd, stat, self._body(name, fd, stat))
        except BaseException:
            os.close(fd)
            raise

    def _kept(self, name: str) -> Opened | None:
        """The kept body of ``name`` if the name leads, without a symlink at its end, to
        the regular file of that version; else None."""
        kept = self._bodies.get(name)
        if kept is None:
            return None
        version, body, path = kept
        try:
            now = os.stat(path, follow_symlinks=False)
        except (OSError, ValueError):
            return None
        if not stat_kind.S_ISREG(now.st_mode) or _version(now) != version:
            return None
        return Opened(name, -1, now, body)

    def _body(self, name: str, fd: int, stat: os.stat_result) -> bytes | None:
        if stat.st_size > self.max_body:
            return None
        version = _version(stat)
        kept = self._bodies.get(name)
        if kept is not None and kept[0] == version:
            return kept[1]
        body = os.pread(fd, stat.st_size + 1, 0)
        if len(body) != stat.st_size:
            return None  # changing while read: let the file's own sending meet it
        self._keep(name, version, body)
        return body

    def _keep(self, name: str, version: Version, body: bytes) -> None:
        if self._body_bytes + len(body) > MAX_BODIES:
            self._bodies.clear()
            self._body_bytes = 0
        old = self._bodies.pop(name, None)
        self._body_bytes += len(body) - (len(old[1]) if old else 0)
        self._bodies[name] = (version, body, self.catalog.path_of(name))


def etag(version: Version) -> str:
    """The strong ETag of a file's version (its size, time and inode)."""
    _, inode, size, mtime_ns, _ = version
    return f'"{size:x}-{mtime_ns:x}-{inode:x}"'


def last_modified(version: Version) -> str:
    """A file version's Last-Modified date, as HTTP writes it."""
    return formatdate(version[3] // 1_000_000_000, usegmt=True)


def _version(st: os.stat_result) -> Version:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
