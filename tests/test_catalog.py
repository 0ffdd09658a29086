"""The catalog: listing, safe name resolution, atomic uploads."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

import sesame.catalog
from sesame.catalog import UPLOAD_PREFIX, Catalog, safe_filename
from sesame.errors import FileExists, FileMissing, UploadRejected
from tests.support import SAMPLES


@pytest.fixture
def catalog(files_dir: Path) -> Catalog:
    return Catalog(files_dir)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file next to the files folder, which no name may reach."""
    path = tmp_path / "outside.txt"
    path.write_bytes(b"secret\n")
    return path


def test_lists_samples_sorted_with_metadata(catalog: Catalog, files_dir: Path) -> None:
    """Every file is listed by relative POSIX name with size, mtime, SHA-256 and media type."""
    infos = catalog.files()
    assert [i.name for i in infos] == sorted(SAMPLES)
    for info in infos:
        body = SAMPLES[info.name]
        assert info.size == len(body)
        assert info.sha256 == hashlib.sha256(body).hexdigest()
        assert info.modified_at == (files_dir / info.name).stat().st_mtime


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("hello.txt", "text/plain"),
        ("page.html", "text/html"),
        ("sub/nested.bin", "application/octet-stream"),
    ],
)
def test_media_type_from_name(catalog: Catalog, name: str, media_type: str) -> None:
    """The media type comes from the name, octet-stream when the extension says nothing."""
    assert catalog.info(name).media_type == media_type


def test_unknown_extension_is_octet_stream(catalog: Catalog, files_dir: Path) -> None:
    """A name with no known extension is served as application/octet-stream."""
    (files_dir / "README").write_bytes(b"x")
    assert catalog.info("README").media_type == "application/octet-stream"


def test_listing_skips_hidden_and_escaping(
    catalog: Catalog, files_dir: Path, outside: Path
) -> None:
    """Hidden files, hidden folders, and symlinks pointing out are never listed."""
    (files_dir / ".env").write_bytes(b"SECRET=1")
    (files_dir / ".git").mkdir()
    (files_dir / ".git" / "config").write_bytes(b"x")
    (files_dir / "escape.txt").symlink_to(outside)
    assert [i.name for i in catalog.files()] == sorted(SAMPLES)


def test_listing_empty_and_missing_folder(tmp_path: Path) -> None:
    """An empty or not yet created folder lists nothing."""
    (tmp_path / "empty").mkdir()
    assert Catalog(tmp_path / "empty").files() == []
    assert Catalog(tmp_path / "not-yet").files() == []


def test_hash_is_cached(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's hash is computed once, not again on each listing or info."""
    calls: list[Path] = []
    real = sesame.catalog.file_sha256

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(sesame.catalog, "file_sha256", counting)
    catalog.info("hello.txt")
    catalog.info("hello.txt")
    catalog.files()
    assert [p.name for p in calls].count("hello.txt") == 1


def test_hash_follows_a_changed_file(catalog: Catalog, files_dir: Path) -> None:
    """When the file changes, its hash is computed again and is the new one."""
    before = catalog.info("hello.txt").sha256
    path = files_dir / "hello.txt"
    path.write_bytes(b"changed\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after = catalog.info("hello.txt").sha256
    assert before != after == hashlib.sha256(b"changed\n").hexdigest()


@pytest.mark.parametrize(
    "name",
    [
        "hello.txt",
        "./hello.txt",
        "sub/nested.bin",
        "sub//nested.bin",
        "芝麻 开门.txt",
        'say "hi".txt',
    ],
)
def test_resolve_inside(catalog: Catalog, files_dir: Path, name: str) -> None:
    """Names of files in the folder resolve to their real paths."""
    assert catalog.resolve(name) == (files_dir / name).resolve()


def test_symlinks_are_never_served(catalog: Catalog, files_dir: Path) -> None:
    """A symlink, even to a file inside the folder, is not a shareable file: the gateway
    opens files without following links, so the catalog never offers one."""
    (files_dir / "alias.txt").symlink_to(files_dir / "hello.txt")
    with pytest.raises(FileMissing):
        catalog.resolve("alias.txt")
    with pytest.raises(FileMissing):
        catalog.open("alias.txt")
    assert "alias.txt" not in [info.name for info in catalog.files()]


TRAVERSALS = [
    "..",
    "../x",
    "../outside.txt",
    "a/../../x",
    "sub/../../outside.txt",
    "sub/../hello.txt",
    "/etc/passwd",
    "//etc/passwd",
    "hello.txt\x00.png",
    "\x00",
    "",
    ".",
    "./",
    "<root>",
    "escape.txt",
    "escape-dir/outside.txt",
    "loop",
    "sub",
    "sub/",
    ".env",
    "sub/.hidden",
    ".git/config",
    "..\\outside.txt",
    "sub\\nested.bin",
    "missing.txt",
    "sub/missing.txt",
    "hello.txt/x",
    "~/outside.txt",
    "%2e%2e/outside.txt",
    "fifo",
    "x" * 5000,
]


@pytest.mark.parametrize("name", TRAVERSALS, ids=repr)
def test_traversal_refused(
    catalog: Catalog, files_dir: Path, outside: Path, tmp_path: Path, name: str
) -> None:
    """Every name that leaves the folder, or is not a regular visible file in it, is FileMissing."""
    (files_dir / ".env").write_bytes(b"SECRET=1")
    (files_dir / "sub" / ".hidden").write_bytes(b"x")
    (files_dir / ".git").mkdir()
    (files_dir / ".git" / "config").write_bytes(b"x")
    (files_dir / "escape.txt").symlink_to(outside)
    (files_dir / "escape-dir").symlink_to(tmp_path, target_is_directory=True)
    (files_dir / "loop").symlink_to(files_dir / "loop")
    os.mkfifo(files_dir / "fifo")
    if name == "<root>":
        name = str(files_dir)
    with pytest.raises(FileMissing):
        catalog.resolve(name)
    with pytest.raises(FileMissing):
        catalog.info(name)


def test_save_writes_the_bytes(catalog: Catalog, files_dir: Path) -> None:
    """An upload is saved under its name and described like any listed file."""
    body = b"new file\n" * 1000
    info = catalog.save("new.txt", io.BytesIO(body), max_bytes=len(body))
    assert (files_dir / "new.txt").read_bytes() == body
    assert (info.name, info.size, info.sha256) == (
        "new.txt",
        len(body),
        hashlib.sha256(body).hexdigest(),
    )


def test_save_into_a_folder_not_yet_made(tmp_path: Path) -> None:
    """The files folder is created by the first upload."""
    Catalog(tmp_path / "new").save("a.txt", io.BytesIO(b"a"), max_bytes=10)
    assert (tmp_path / "new" / "a.txt").read_bytes() == b"a"


class Broken(io.RawIOBase):
    """A stream that gives one chunk and then fails, like a dropped connection."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.sent:
            raise ConnectionResetError("client went away")
        self.sent = True
        return b"x" * 1000


def test_failed_upload_leaves_nothing(catalog: Catalog, files_dir: Path) -> None:
    """A stream that breaks half-way leaves no file and no temporary file behind."""
    before = sorted(files_dir.iterdir())
    with pytest.raises(ConnectionResetError):
        catalog.save("half.txt", Broken(), max_bytes=10**6)  # type: ignore[arg-type]
    assert sorted(files_dir.iterdir()) == before


def test_too_large_rejected_without_trace(catalog: Catalog, files_dir: Path) -> None:
    """An upload over the limit is UploadRejected and leaves nothing behind."""
    before = sorted(files_dir.iterdir())
    with pytest.raises(UploadRejected, match="1000 bytes"):
        catalog.save("big.bin", io.BytesIO(b"x" * 1001), max_bytes=1000)
    assert sorted(files_dir.iterdir()) == before
    assert not list(files_dir.glob(f"{UPLOAD_PREFIX}*"))


def test_exactly_the_limit_accepted(catalog: Catalog) -> None:
    """An upload of exactly max_bytes is accepted."""
    assert catalog.save("edge.bin", io.BytesIO(b"x" * 1000), max_bytes=1000).size == 1000


def test_existing_name_kept(catalog: Catalog, files_dir: Path) -> None:
    """Uploading over an existing name raises FileExists and keeps the old bytes."""
    with pytest.raises(FileExists) as info:
        catalog.save("hello.txt", io.BytesIO(b"replacement"), max_bytes=100)
    assert info.value.name == "hello.txt"
    assert (files_dir / "hello.txt").read_bytes() == SAMPLES["hello.txt"]
    assert not list(files_dir.glob(f"{UPLOAD_PREFIX}*"))


def test_overwrite_replaces(catalog: Catalog, files_dir: Path) -> None:
    """With overwrite=True the new bytes replace the old, and the new hash is reported."""
    info = catalog.save("hello.txt", io.BytesIO(b"replacement"), max_bytes=100, overwrite=True)
    assert (files_dir / "hello.txt").read_bytes() == b"replacement"
    assert info.sha256 == hashlib.sha256(b"replacement").hexdigest()


@pytest.mark.parametrize(
    ("name", "saved"),
    [
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("sub/name.txt", "name.txt"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        (".bashrc", "bashrc"),
        (" . spaced.txt", "spaced.txt"),
        ("a\x00b\x1f.txt", "a_b_.txt"),
        ("line\nbreak.txt", "line_break.txt"),
        ("a:b*c?.txt", "a_b_c_.txt"),
        ("芝麻 上传.txt", "芝麻 上传.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # right-to-left override: .pdf shown
        ("zero\u200bwidth.txt", "zerowidth.txt"),
    ],
)
def test_upload_name_sanitised(catalog: Catalog, files_dir: Path, name: str, saved: str) -> None:
    """An upload lands at the top of the folder under a safe version of its name."""
    assert catalog.save(name, io.BytesIO(b"x"), max_bytes=10).name == saved
    assert (files_dir / saved).read_bytes() == b"x"


@pytest.mark.parametrize("name", ["", "   ", ".", "..", "...", "a/", "../"])
def test_unusable_upload_name_rejected(catalog: Catalog, files_dir: Path, name: str) -> None:
    """A name with nothing usable left is UploadRejected, and nothing is written."""
    before = sorted(files_dir.iterdir())
    with pytest.raises(UploadRejected):
        catalog.save(name, io.BytesIO(b"x"), max_bytes=10)
    assert sorted(files_dir.iterdir()) == before


@pytest.mark.parametrize("name", ["a\x00b", "\x01\x02.txt", "tab\there", "del\x7f.txt"])
def test_safe_filename_drops_control_characters(name: str) -> None:
    """No control character survives sanitising."""
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in safe_filename(name))


def test_free_name(catalog: Catalog) -> None:
    """free_name keeps a free name and numbers a taken one."""
    assert catalog.free_name("new.txt") == "new.txt"
    assert catalog.free_name("hello.txt") == "hello (2).txt"
    catalog.save("hello (2).txt", io.BytesIO(b"x"), max_bytes=10)
    assert catalog.free_name("../hello.txt") == "hello (3).txt"
