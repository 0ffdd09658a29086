"""The files the gateway sends, each opened once per request beneath the files folder
without following links (Catalog.open), and sent from that descriptor: a file or folder
swapped for a symlink at any moment never sends a byte from outside the folder.

A small file's bytes are kept per version (device, inode, size, times), so a burst of
downloads reads it once; a request still opens and checks the file, and is sent the kept
bytes only if the file it opened is that version. A request that needs only those bytes
(a whole file sent from memory) has the file looked at instead (Catalog.look): its name's
own link not followed, as ``open`` does, and the kept bytes sent only if what it names is
that version; one system call, not three. The requests decided together (a batch, see
gateway.download) look at each file once: one stat for all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from email.utils import formatdate

from sesame.catalog import Catalog
from sesame.values import quick_init

MAX_BODIES = 64 * 1024 * 1024  # bytes of all kept bodies together; past it they start over

Version = tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns
Looks = dict[str, os.stat_result | None]  # what Catalog.look said of each file, by name


@quick_init
@dataclass(frozen=True, slots=True)
class Opened:
    """One request's open file: its descriptor (the request closes it; None for a file
    only looked at, whose bytes are kept), its stat, its validators, and its bytes if they
    are kept."""

    name: str
    fd: int | None
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
        if self.fd is not None:
            os.close(self.fd)


class Files:
    """The catalog's files for the gateway; bodies of files up to ``max_body`` bytes kept."""

    def __init__(self, catalog: Catalog, max_body: int) -> None:
        self.catalog = catalog
        self.max_body = max_body
        self._bodies: dict[str, tuple[Version, bytes]] = {}
        self._body_bytes = 0

    def open(self, name: str, descriptor: bool = True, looks: Looks | None = None) -> Opened:
        """The file ``name`` of the catalog, open. Raises FileMissing (see Catalog.open).
        ``descriptor`` False: the caller needs only the kept bytes, and a file whose bytes
        are kept as it is now is looked at, not opened (see the module's docstring).
        ``looks``: the files looked at already for requests decided together, by name; a
        look taken here is added."""
        if not descriptor:
            kept = self._bodies.get(name)
            stat = None if kept is None else self._look(name, looks)
            if kept is not None and stat is not None and _version(stat) == kept[0]:
                return Opened(name, None, stat, kept[1])
        fd, stat = self.catalog.open(name)
        try:
            return Opened(name, fd, stat, self._body(name, fd, stat))
        except BaseException:
            os.close(fd)
            raise

    def _look(self, name: str, looks: Looks | None) -> os.stat_result | None:
        if looks is None:
            return self.catalog.look(name)
        if name not in looks:
            looks[name] = self.catalog.look(name)
        return looks[name]

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
        self._bodies[name] = (version, body)


def etag(version: Version) -> str:
    """The strong ETag of a file's version (its size, time and inode)."""
    _, inode, size, mtime_ns, _ = version
    return f'"{size:x}-{mtime_ns:x}-{inode:x}"'


def last_modified(version: Version) -> str:
    """A file version's Last-Modified date, as HTTP writes it."""
    return formatdate(version[3] // 1_000_000_000, usegmt=True)


def _version(st: os.stat_result) -> Version:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
