"""Downloads held back on a real SQLite file (sesame.store.held): through a link with no
limit, settled as they begin, they are let in at once and written by the next transaction,
first, or by the flusher; a lock held elsewhere or a store that fails delays them, never
loses them; closing, the gateway's stop and the interpreter's exit write them; a link with
a limit is never held back. Every count here is read by a connection of its own, as another
process would (the service's reads write what is held first)."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame import ranges
from sesame.downloads import Admitted, Download
from sesame.errors import StoreUnavailable
from sesame.models import DownloadStart, Link, Outcome, Visitor
from sesame.service import Service
from sesame.store import grouping, held
from tests.support import BODY, FILE, VISITOR, FakeClock, make_service, path_of


def _starts(service: Service, link: Link, count: int) -> list[DownloadStart]:
    whole = ranges.whole(len(BODY))
    return [
        service.downloads.starting(Admitted(link), whole, VISITOR, True).start for _ in range(count)
    ]


def _written(service: Service, link_id: str) -> tuple[int, int, list[str]]:
    """The link's downloads, the day's bytes and the link's rows' outcomes, as another
    process reads them."""
    store: Any = service.store
    with sqlite3.connect(store.path) as db:
        (downloads,) = db.execute("SELECT downloads FROM links WHERE id = ?", (link_id,)).fetchone()
        egress = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM egress").fetchone()[0]
        rows = db.execute(
            "SELECT outcome FROM downloads WHERE link_id = ? ORDER BY id", (link_id,)
        ).fetchall()
    return downloads, egress, [row[0] for row in rows]


@contextmanager
def _locked(service: Service) -> Iterator[None]:
    """Another connection (as another process) holding the file's write lock."""
    store: Any = service.store
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def slow_flusher(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flusher that waits a minute: only another transaction, or a stop, writes."""
    monkeypatch.setattr(held, "HOLD_WAIT", 60.0)


def _wait_for(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)  # polling the flusher, a thread of its own


def _wait_for_count(service: Service, link_id: str, count: int, timeout: float = 10) -> None:
    _wait_for(lambda: _written(service, link_id)[0] == count, timeout)


def test_a_locked_store_lets_them_in_and_writes_them_once_free(tmp_path: Path) -> None:
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    link = service.share(FILE).link
    with _locked(service):
        started = time.monotonic()
        assert service.store.begin_downloads(_starts(service, link, 3)) == [None] * 3
        assert time.monotonic() - started < 0.1  # not waiting for the lock
        time.sleep(0.5)  # the flusher tries, and fails, meanwhile
        assert _written(service, link.id) == (0, 0, [])
    # The flusher tries again (waiting longer after each failure, at most RETRY_WAIT).
    _wait_for(lambda: _written(service, link.id)[0] == 3, held.RETRY_WAIT + 5)
    assert _written(service, link.id) == (3, 3 * len(BODY), ["completed"] * 3)


def test_a_link_with_a_limit_is_never_held_back(tmp_path: Path) -> None:
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    link = service.share(FILE, max_downloads=10).link
    with _locked(service):
        answers = service.store.begin_downloads(_starts(service, link, 2))
    assert all(isinstance(answer, StoreUnavailable) for answer in answers)
    assert service.store.begin_downloads(_starts(service, link, 2)) == [None, None]
    assert _written(service, link.id)[0] == 2  # on disk as it was answered


def test_the_next_transaction_writes_them_first(tmp_path: Path, slow_flusher: None) -> None:
    service = make_service(tmp_path, FakeClock())
    free = service.share(FILE).link
    limited = service.share(FILE, max_downloads=3).link
    mixed = [*_starts(service, free, 2), *_starts(service, limited, 1)]
    assert service.store.begin_downloads(mixed) == [None] * 3
    assert _written(service, free.id)[0] == 2  # with the limited one's transaction
    assert service.store.begin_downloads(_starts(service, free, 1)) == [None]
    assert _written(service, free.id)[0] == 2  # held, the flusher waits a minute
    service.store.begin_download(_starts(service, limited, 1)[0])
    assert _written(service, free.id) == (3, 5 * len(BODY), ["completed"] * 3)
    store: Any = service.store
    with sqlite3.connect(store.path) as db:
        order = [row[0] for row in db.execute("SELECT link_id FROM downloads ORDER BY id")]
    assert order == [free.id, free.id, limited.id, free.id, limited.id]


def test_an_aborted_download_amends_its_held_row(tmp_path: Path, slow_flusher: None) -> None:
    """A body sent from memory that turns out aborted, settled before its row was written:
    the row is written first, then amended, and the download given back."""
    service = make_service(tmp_path, FakeClock())
    link = service.share(FILE).link
    starting = service.downloads.starting(Admitted(link), ranges.whole(len(BODY)), VISITOR, True)
    (download,) = service.downloads.begin_all([starting])
    assert isinstance(download, Download)
    assert _written(service, link.id) == (0, 0, [])
    download.finish(0, False)
    assert _written(service, link.id) == (0, 0, [Outcome.ABORTED])


def test_at_most_max_held_then_they_wait_for_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(held, "MAX_HELD", 3)
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    link = service.share(FILE).link
    with _locked(service):
        assert service.store.begin_downloads(_starts(service, link, 3)) == [None] * 3
        (more,) = service.store.begin_downloads(_starts(service, link, 1))
        assert isinstance(more, StoreUnavailable)  # waited for the lock, as any download
    service.store.flush()
    assert _written(service, link.id)[0] == 3


def test_two_stores_on_one_file_add_up(tmp_path: Path, slow_flusher: None) -> None:
    """Two processes' held downloads of one link add to its count, neither overwriting."""
    one = make_service(tmp_path, FakeClock())
    other = Service.from_settings(one.settings, clock=FakeClock())
    link = one.share(FILE).link
    assert one.store.begin_downloads(_starts(one, link, 4)) == [None] * 4
    assert other.store.begin_downloads(_starts(other, link, 3)) == [None] * 3
    other.store.flush()
    one.store.flush()
    assert _written(one, link.id) == (7, 7 * len(BODY), ["completed"] * 7)


def test_closing_writes_them(tmp_path: Path, slow_flusher: None) -> None:
    service = make_service(tmp_path, FakeClock())
    link = service.share(FILE).link
    service.store.begin_downloads(_starts(service, link, 2))
    service.store.close()
    assert _written(service, link.id)[0] == 2


def test_the_gateway_writes_them_as_it_stops(tmp_path: Path, slow_flusher: None) -> None:
    service = make_service(tmp_path, FakeClock())
    shared = service.share(FILE)
    with TestClient(create_app(service.settings, service)) as client:  # runs its lifespan
        for _ in range(3):
            assert client.get(path_of(service, shared.url)).content == BODY
        assert _written(service, shared.link.id)[0] == 0
    assert _written(service, shared.link.id) == (3, 3 * len(BODY), ["completed"] * 3)


EXITING = """
import sys
from sesame import ranges
from sesame.downloads import Admitted
from sesame.service import Service
from sesame.store import held
from tests.support import BODY, FILE, VISITOR, FakeClock, make_settings
from pathlib import Path

held.HOLD_WAIT = 60.0
service = Service.from_settings(make_settings(Path(sys.argv[1])), clock=FakeClock())
link = service.share(FILE).link
start = service.downloads.starting(Admitted(link), ranges.whole(len(BODY)), VISITOR, True)
assert service.store.begin_downloads([start.start]) == [None]
print(link.id)
"""


def test_the_interpreter_exit_writes_them(tmp_path: Path) -> None:
    """A process that never closes its store (a script, the CLI) writes them as it exits."""
    done = subprocess.run(
        [sys.executable, "-c", EXITING, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    service = make_service(tmp_path, FakeClock())
    assert _written(service, done.stdout.strip())[0] == 1


def test_a_store_nobody_uses_goes_with_its_flusher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flusher keeps no store alive: one dropped is collected, connections and all, and
    its flusher ends."""
    monkeypatch.setattr(held, "IDLE", 0.05)
    service = make_service(tmp_path, FakeClock())
    link = service.share(FILE).link
    service.store.begin_downloads(_starts(service, link, 2))
    _wait_for_count(service, link.id, 2)  # written by the flusher
    store: Any = service.store
    flusher = store._group._held._flusher
    assert flusher is not None and flusher.is_alive()
    gone = weakref.ref(store)
    del service, store
    gc.collect()
    assert gone() is None
    flusher.join(timeout=5)
    assert not flusher.is_alive()


def test_closing_a_locked_store_says_what_it_could_not_write(
    tmp_path: Path, slow_flusher: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing releases the connections even when what is held cannot be written; the log
    says so, rather than the caller hearing an error it can do nothing about."""
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    link = service.share(FILE).link
    service.store.begin_downloads(_starts(service, link, 2))
    with _locked(service):
        service.store.close()
    assert "rows could not be written" in caplog.text
    assert _written(service, link.id)[0] == 0


def test_nothing_is_held_while_the_store_fails(tmp_path: Path) -> None:
    """Once a write failed, a link with no limit waits for the store as any other (503),
    so that nothing is answered that the store may be unable to write; once a write
    succeeds again, its downloads are held back again."""
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    store: Any = service.store
    link = service.share(FILE).link
    with _locked(service):
        assert store.begin_downloads(_starts(service, link, 2)) == [None] * 2
        _wait_for(lambda: store._group._failing)  # the flusher tried, and failed
        (refused,) = store.begin_downloads(_starts(service, link, 1))
        assert isinstance(refused, StoreUnavailable)
    _wait_for_count(service, link.id, 2, held.RETRY_WAIT + 5)
    started = time.monotonic()
    assert store.begin_downloads(_starts(service, link, 1)) == [None]
    assert time.monotonic() - started < 0.1
    _wait_for_count(service, link.id, 3)


def test_max_held_counts_what_a_transaction_is_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(held, "MAX_HELD", 4)
    service = make_service(tmp_path, FakeClock(), store_timeout=1.0)
    store: Any = service.store
    link = service.share(FILE).link
    with _locked(service):
        assert store.begin_downloads(_starts(service, link, 4)) == [None] * 4
        _wait_for(lambda: bool(store._group._held._carried))  # the flusher waits in BEGIN
        (more,) = store.begin_downloads(_starts(service, link, 1))
        assert isinstance(more, StoreUnavailable)  # not held on top of the four carried
        assert len(store._group._held) == 4
    _wait_for_count(service, link.id, 4, held.RETRY_WAIT + 5)


def test_a_read_does_not_wait_for_a_failing_store(tmp_path: Path) -> None:
    service = make_service(tmp_path, FakeClock(), store_timeout=2.0)
    store: Any = service.store
    link = service.share(FILE).link
    with _locked(service):
        store.begin_downloads(_starts(service, link, 1))
        _wait_for(lambda: store._group._failing, 10)
        started = time.monotonic()
        assert service.link(link.id).link.downloads == 0  # what is on disk
        assert [e.link_id for e in service.events()] == []
        assert time.monotonic() - started < 0.5  # not the store's timeout of 2 s


def test_a_stop_keeps_trying_while_the_store_fails(
    tmp_path: Path, slow_flusher: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's stop tries again while the file is locked: written once it is free;
    and says so in the log if it stays locked past STOP_WAIT."""
    from gateway import app

    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    link = service.share(FILE).link
    service.store.begin_downloads(_starts(service, link, 2))
    with _locked(service):
        stop = threading.Thread(target=asyncio.run, args=(app._flush(service),))
        stop.start()
        time.sleep(1.0)  # the stop tries, and fails, meanwhile
        assert stop.is_alive()
    stop.join(timeout=10)
    assert not stop.is_alive()
    assert _written(service, link.id)[0] == 2


def test_a_read_finding_this_process_writing_does_not_take_the_store_for_failing(
    tmp_path: Path, slow_flusher: None
) -> None:
    """A read's short wait for this process's own writers proves nothing about the store:
    downloads go on being held back."""
    service = make_service(tmp_path, FakeClock())
    store: Any = service.store
    link = service.share(FILE).link
    store.begin_downloads(_starts(service, link, 1))
    with store._writing:  # as a long transaction of this process's would
        with pytest.raises(StoreUnavailable):
            store.flush(0.01)
    assert not store._group._failing
    assert store.begin_downloads(_starts(service, link, 1)) == [None]


def test_a_read_writes_what_is_held_and_leaves_the_queued_downloads(
    tmp_path: Path, slow_flusher: None
) -> None:
    """A read's short wait is for what is held only: a download queued for a transaction is
    left to a holder that gives it the store's whole timeout."""
    service = make_service(tmp_path, FakeClock())
    store: Any = service.store
    link = service.share(FILE).link
    store.begin_downloads(_starts(service, link, 1))
    queued = grouping._Ticket(lambda db: None)
    store._group._queue.append(queued)
    store.flush(0.05)
    assert _written(service, link.id)[0] == 1
    assert store._group._queue == [queued] and not queued.done


def test_no_connection_to_be_had_is_a_failing_store(tmp_path: Path, slow_flusher: None) -> None:
    """A connection that cannot be opened (no descriptors left, the file gone) fails what
    asked for it, leaves nothing queued to be run after its caller heard so, and stops
    holding downloads back."""
    service = make_service(tmp_path, FakeClock())
    store: Any = service.store
    group = store._group
    link = service.share(FILE).link
    store.begin_downloads(_starts(service, link, 1))

    def no_file() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    ((_, error),) = group.run_all(no_file, [lambda db: None])
    assert isinstance(error, sqlite3.OperationalError) and group._queue == []
    assert group._failing
    group._failing = False
    group._connection = no_file
    with pytest.raises(sqlite3.OperationalError):
        group.flush()
    assert group._failing
    group._connection = lambda: store._db  # the file is back: what was held is written
    store.flush()
    assert _written(service, link.id)[0] == 1


def test_rows_that_count_nothing_leave_the_downloads_their_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of HEADs or refusals (cheap for anyone to send) while the file is locked
    fills only NOTES_SHARE of MAX_HELD: downloads through an unlimited link are still let in
    at once, and the rows past that share wait for the store, as any write."""
    monkeypatch.setattr(held, "MAX_HELD", 4)
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    link = service.share(FILE).link
    downloads = service.downloads
    visitor = Visitor("192.0.2.1", "curl/8")

    def note() -> None:
        downloads.record(downloads.event(link.id, visitor, 200, 0, Outcome.HEAD))

    with _locked(service):
        note()
        note()  # two of four: the notes' share
        assert service.store.begin_downloads(_starts(service, link, 1)) == [None]
        with pytest.raises(StoreUnavailable):
            note()  # three of four held, past the notes' share: written now, and locked
    service.store.flush()
    assert _written(service, link.id)[0] == 1
    assert sorted(e.outcome for e in service.store.list_events(link.id)) == sorted(
        [Outcome.HEAD, Outcome.HEAD, Outcome.COMPLETED]
    )
