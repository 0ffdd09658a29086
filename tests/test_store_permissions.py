"""The SQLite database and its -wal and -shm files are readable by their owner only, in a
folder only the owner can enter."""

from __future__ import annotations

import stat
from pathlib import Path

from sesame.store import open_store
from tests.support import NOW, FakeClock, make_service


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_database_is_private(tmp_path: Path) -> None:
    """A new store makes its folder 0700 and sesame.db, -wal and -shm 0600."""
    service = make_service(tmp_path, FakeClock(NOW))
    service.share("InstMsiW.exe")
    data = tmp_path / "state"
    assert mode(data) == 0o700
    for name in ("sesame.db", "sesame.db-wal", "sesame.db-shm"):
        assert mode(data / name) == 0o600, name
    service.store.close()


def test_existing_database_is_made_private(tmp_path: Path) -> None:
    """A database left 0644 by an earlier version is 0600 once a store opens it."""
    db = tmp_path / "old" / "sesame.db"
    db.parent.mkdir()
    open_store(f"sqlite:///{db}", 60).close()
    for path in db.parent.iterdir():
        path.chmod(0o644)
    store = open_store(f"sqlite:///{db}", 60)
    store.list_links()
    for path in db.parent.iterdir():
        assert mode(path) == 0o600, path.name
    store.close()
