"""The files the owner can share: list them, resolve a name safely, take an upload atomically."""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
import secrets
import stat
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pathvalidate import sanitize_filename

from sesame.errors import FileExists, FileMissing, UploadRejected
from sesame.models import FileInfo

CHUNK = 1024 * 1024
# O_NONBLOCK: opening a FIFO someone put in the folder must not hang the gateway.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
UPLOAD_PREFIX = ".upload-"


class Catalog:
    """The regular files under ``root``. Names are relative POSIX paths (``"a/b.txt"``);
    hidden files and folders (a leading dot) are never listed nor served."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._beneath = os.path.join(self.root, "")  # the root's path and a separator
        self._hashes: dict[tuple[str, int, int, int], str] = {}
        self._lock = threading.Lock()

    def files(self) -> list[FileInfo]:
        """Every shareable file, sorted by name."""
        infos = []
        for name in sorted(self._names()):
            try:
                infos.append(self.info(name))
            except FileMissing:
                continue  # removed or swapped for a bad symlink while we walked
        return infos

    def resolve(self, name: str) -> Path:
        """The real path of ``name``, guaranteed to be a regular file inside the root.

        Raises FileMissing for a missing file, and for any name that would leave the
        root: ``..``, absolute paths, NUL bytes, the root itself, symlinks pointing out.
        """
        parts = _parts(name)
        try:
            path = Path(os.path.realpath(self.root.joinpath(*parts), strict=True))
            is_file = stat.S_ISREG(path.stat().st_mode)
        except (OSError, ValueError):
            raise FileMissing(name) from None
        if os.path.commonpath([self.root, path]) != str(self.root) or path == self.root:
            raise FileMissing(name, "outside the files folder")
        if path != self.root.joinpath(*parts):  # a symlink on the way: never served (see open)
            raise FileMissing(name, "a symbolic link")
        if not is_file:
            raise FileMissing(name, "not a regular file")
        return path

    def open(self, name: str) -> tuple[int, os.stat_result]:
        """A read-only descriptor of the regular file ``name`` and its stat, opened beneath
        the root one component at a time without following any symlink, so that a file or
        folder swapped for a link at any moment cannot send bytes from outside the root. The
        caller closes it. Raises FileMissing (for symlinks too, even ones that point inside
        the root). A name right beneath the root is opened in one call, by its path: the
        root's own path is followed as it is when the root is opened, the name's not."""
        parts = _parts(name)
        if len(parts) == 1:  # right beneath the root: one call, its name's own link refused
            try:
                fd = os.open(self._beneath + parts[0], _FILE_FLAGS)
            except OSError:
                raise FileMissing(name) from None
            return _regular(name, fd)
        try:
            folder = os.open(self.root, _DIR_FLAGS)
        except OSError:
            raise FileMissing(name) from None
        try:
            for part in parts[:-1]:
                inner = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=folder)
                os.close(folder)
                folder = inner
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
        except OSError:
            raise FileMissing(name) from None
        finally:
            os.close(folder)
        return _regular(name, fd)

    def look(self, name: str) -> os.stat_result | None:
        """The stat of ``name`` if it is a regular file right beneath the root, looked at
        without following its own link (as ``open`` opens it), without opening it; None for
        any other name, and for one that is missing or no regular file (``open`` says why)."""
        parts = _parts(name)
        if len(parts) != 1:
            return None
        try:
            st = os.stat(self._beneath + parts[0], follow_symlinks=False)
        except OSError:
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    def info(self, name: str) -> FileInfo:
        """Size, time, SHA-256 and media type of ``name``; the hash is cached per version."""
        path = self.resolve(name)
        st = path.stat()
        clean = "/".join(_parts(name))
        return FileInfo(
            name=clean,
            size=st.st_size,
            modified_at=st.st_mtime,
            sha256=self._sha256(path, st),
            media_type=media_type(clean),
        )

    def save(
        self, name: str, source: BinaryIO, max_bytes: int, overwrite: bool = False
    ) -> FileInfo:
        """Write ``source`` as ``name`` (sanitised) at the top of the root, atomically.

        Raises UploadRejected when the name is unusable or the body exceeds ``max_bytes``,
        and FileExists when the name is taken and ``overwrite`` is false. Either way
        nothing is written and no existing file is touched.
        """
        clean = safe_filename(name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{UPLOAD_PREFIX}{secrets.token_hex(8)}"
        try:
            _copy_limited(source, tmp, max_bytes)
            self._place(tmp, self.root / clean, overwrite)
        finally:
            tmp.unlink(missing_ok=True)
        return self.info(clean)

    def free_name(self, name: str) -> str:
        """``name`` sanitised, or ``"stem (2).ext"`` and so on if that is taken."""
        clean = safe_filename(name)
        path = PurePosixPath(clean)
        candidate, number = clean, 1
        while (self.root / candidate).exists():
            number += 1
            candidate = f"{path.stem} ({number}){path.suffix}"
        return candidate

    def _place(self, tmp: Path, dest: Path, overwrite: bool) -> None:
        if overwrite:
            os.replace(tmp, dest)
            return
        try:
            os.link(tmp, dest)  # fails if dest exists: no window to overwrite it
        except FileExistsError:
            raise FileExists(dest.name) from None

    def _names(self) -> Iterator[str]:
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(folder).relative_to(self.root)
            for filename in files:
                if not filename.startswith("."):
                    yield (rel / filename).as_posix()

    def _sha256(self, path: Path, st: os.stat_result) -> str:
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = file_sha256(path)
            with self._lock:
                self._hashes[key] = known
        return known


def _regular(name: str, fd: int) -> tuple[int, os.stat_result]:
    """``fd`` and its stat if it is a regular file; else it is closed: FileMissing."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileMissing(name, "not a regular file")
    return fd, st


def _parts(name: str) -> tuple[str, ...]:
    if not isinstance(name, str):
        raise FileMissing(str(name), "not a valid file name")
    return _checked_parts(name)


@functools.lru_cache(maxsize=4096)
def _checked_parts(name: str) -> tuple[str, ...]:
    """The components of a valid name (cached: a link's name is asked for on every download;
    an invalid one raises, and is not kept)."""
    if not name or "\x00" in name or "\\" in name:
        raise FileMissing(str(name), "not a valid file name")
    path = PurePosixPath(name)
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if path.is_absolute() or not parts or any(p == ".." or p.startswith(".") for p in parts):
        raise FileMissing(name, "not a valid file name")
    return parts


def safe_filename(name: str) -> str:
    """An upload's name made safe: its last component, no control, format (such as the
    right-to-left override that disguises an extension) or reserved characters, no leading
    dots or spaces. Raises UploadRejected if nothing usable is left."""
    last = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    last = "".join(ch for ch in last if unicodedata.category(ch) != "Cf")
    clean = sanitize_filename(last, replacement_text="_").strip().lstrip(". ").strip()
    if not clean:
        raise UploadRejected(f"{name!r} is not a usable file name.")
    return clean


def media_type(name: str) -> str:
    """The media type a file's name suggests, ``application/octet-stream`` if none."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_limited(source: BinaryIO, dest: Path, max_bytes: int) -> None:
    written = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise UploadRejected(f"The file is larger than the limit of {max_bytes} bytes.")
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
