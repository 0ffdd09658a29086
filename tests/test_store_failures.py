"""A failing store (SQLite locked, read-only or on a full disk; Redis stopped) answers 503 with
Retry-After and a page or JSON, never a traceback; /healthz says so, /livez does not care; the
CLI exits 75; and everything recovers by itself once the store is back."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame.cli import cli
from sesame.errors import StoreUnavailable
from sesame.models import Outcome
from sesame.service import Service
from sesame.store.guard import guarded
from sesame.store.sqlite import SQLiteStore
from tests.support import (
    BODY,
    FILE,
    KEY,
    NOW,
    T0,
    FakeClock,
    free_port,
    make_service,
    make_settings,
    path_of,
    redis_server,
    running_gateway,
    sesame_env,
    tmpfs,
    wait_until,
)

JSON = {"Accept": "application/json"}
TIMEOUT = 2.0  # seconds a store waits for a lock where a test tells it from no wait
LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def write_locked(db: Path, log: Path) -> Iterator[None]:
    """Another process holding ``db``'s write lock until the block ends."""
    command = [sys.executable, "-c", LOCKER, str(db)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log.open("wb")) as process:
        wait_until(lambda: "locked" in log.read_text(), process, log)  # type: ignore[arg-type]
        try:
            yield
        finally:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=10)


def assert_unavailable(client: TestClient, path: str) -> None:
    """503 with Retry-After, as a bilingual page and as JSON, and /healthz says so."""
    page = client.get(path)
    assert page.status_code == 503, page.text
    assert int(page.headers["retry-after"]) >= 1
    assert "暂时不可用" in page.text and "Temporarily unavailable" in page.text
    assert "Traceback" not in page.text
    answer = client.get(path, headers=JSON)
    assert answer.status_code == 503
    assert answer.json()["error"] == "unavailable"
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert client.get("/livez").status_code == 200


def test_locked_sqlite_is_503_then_recovers(tmp_path: Path) -> None:
    """A write lock held by another process: downloads get 503 and /healthz 503 (within
    100 ms, saying why), a link with no limit too once the store was seen failing (nothing is
    let in that may not be written); released, both download and /healthz is ok again."""
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    limited = service.share(FILE, max_downloads=5)
    free = service.share(FILE)
    client = TestClient(create_app(service.settings, service))
    path = path_of(service, limited.url)
    with write_locked(service.store.path, tmp_path / "locker.log"):  # type: ignore[attr-defined]
        assert_unavailable(client, path)
        started = time.monotonic()
        assert client.get("/healthz").json()["store"] == "database is locked"
        assert time.monotonic() - started < 0.1
        assert_unavailable(client, path_of(service, free.url))
    assert client.get(path).status_code == 200
    assert client.get("/healthz").json()["store"] == "ok"
    assert client.get(path_of(service, free.url)).content == BODY
    assert [event.outcome for event in service.events(free.link.id)] == [Outcome.COMPLETED]
    assert service.link(free.link.id).link.downloads == 1


def test_read_only_sqlite_is_503_then_recovers(tmp_path: Path) -> None:
    """A database on a file system remounted read-only answers 503; once writable, 200."""
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        service = make_service(tmp_path, FakeClock(), data_dir=mnt, store_timeout=0.2)
        shared = service.share(FILE)
        client = TestClient(create_app(service.settings, service))
        path = path_of(service, shared.url)
        service.store.close()  # no file open for writing, or the file system cannot go ro
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        try:
            assert_unavailable(client, path)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        assert client.get(path).status_code == 200


def test_full_disk_sqlite_is_503_then_recovers(tmp_path: Path) -> None:
    """A database on a full tmpfs answers 503, for a link with no limit too once the store
    was seen failing; once there is room again, 200 for both, every row written."""
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        service = make_service(tmp_path, FakeClock(), data_dir=mnt, store_timeout=0.2)
        shared = service.share(FILE, max_downloads=5)
        free = service.share(FILE)
        client = TestClient(create_app(service.settings, service))
        path = path_of(service, shared.url)
        filler = mnt / "filler"
        with filler.open("wb") as out, pytest.raises(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        assert_unavailable(client, path)
        assert_unavailable(client, path_of(service, free.url))
        filler.unlink()
        assert client.get(path).status_code == 200
        assert client.get(path_of(service, free.url)).content == BODY
        assert [event.status for event in service.events(free.link.id)] == [200]


def test_cli_exits_75_on_a_locked_store(tmp_path: Path) -> None:
    """`sesame link` on a locked database: one sentence on stderr and exit code 75."""
    service = make_service(tmp_path, FakeClock(), store_timeout=0.2)
    with write_locked(service.store.path, tmp_path / "locker.log"):  # type: ignore[attr-defined]
        result = CliRunner().invoke(cli, ["link", FILE, "--json"], obj={"factory": lambda: service})
    assert result.exit_code == 75, result.output
    assert result.stdout == ""
    assert "not available" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_exits_75_without_redis(tmp_path: Path) -> None:
    """The `sesame` command with SESAME_STORE_URL on a Redis nobody listens on exits 75."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = sesame_env(
        store_url=url, secret_keys=KEY, files_dir=str(tmp_path), data_dir=str(tmp_path / "s")
    )
    sesame = Path(sys.executable).parent / "sesame"
    result = subprocess.run([str(sesame), "links"], env=env, capture_output=True, text=True)
    assert result.returncode == 75, result.stderr
    assert "not available" in result.stderr and "Traceback" not in result.stderr


def test_store_errors_are_one_kind(tmp_path: Path) -> None:
    """Every store method raises StoreUnavailable, carrying the operation, when Redis is gone."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    service = make_service(tmp_path, FakeClock(), store_url=url, store_timeout=0.2)
    with pytest.raises(StoreUnavailable) as caught:
        service.store.list_links()
    assert caught.value.operation == "list_links"
    assert isinstance(caught.value.__cause__, Exception)


def test_gateway_rides_out_a_redis_restart(tmp_path: Path) -> None:
    """A real gateway on a real redis-server: 200, then 503 (and /healthz 503, /livez 200)
    while Redis is stopped, then 200 again once it is back, without a restart."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings = make_settings(tmp_path, store_url=url, store_timeout=0.5)
    env = sesame_env(
        secret_keys=KEY,
        files_dir=str(settings.files_dir),
        data_dir=str(tmp_path / "state"),
        store_url=url,
        store_timeout="0.5",
    )
    (tmp_path / "redis").mkdir()
    with ExitStack() as first_redis:
        first_redis.enter_context(redis_server(tmp_path / "redis", port))
        # /healthz says 503 while the lock is held (it takes the lock to tell): /livez.
        with running_gateway(env, tmp_path / "gateway.log", ready="/livez") as base:
            service = Service.from_settings(settings)  # the real clock, as the gateway's
            link = base + path_of(service, service.share(FILE).url)
            assert httpx.get(link).status_code == 200
            first_redis.close()  # Redis stops; the gateway goes on
            page = httpx.get(link, timeout=10)
            assert page.status_code == 503 and "retry-after" in page.headers
            assert "Traceback" not in page.text
            assert httpx.get(link, headers=JSON).json()["error"] == "unavailable"
            assert httpx.get(base + "/healthz").status_code == 503
            assert httpx.get(base + "/livez").status_code == 200
            with redis_server(tmp_path / "redis", port):
                assert _recovers(base + "/healthz")
                fresh = base + path_of(service, service.share(FILE).url)
                assert httpx.get(fresh).status_code == 200
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def _recovers(url: str, within: float = 10) -> bool:
    """Whether ``url`` answers 200 again within ``within`` seconds (polled)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if httpx.get(url, timeout=2).status_code == 200:
            return True
        time.sleep(0.1)  # polling for a recovery, not waiting for an expiry
    return False


def test_api_and_rate_limit_without_redis_are_503(tmp_path: Path) -> None:
    """With Redis gone, the API (its key check counts in Redis) answers 503 JSON and a
    rate-limited download 503, never 500."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    service = make_service(
        tmp_path, FakeClock(), store_url=url, store_timeout=0.2, rate_limit="60/minute"
    )
    client = TestClient(create_app(service.settings, service))
    answer = client.post("/api/links", json={"file": FILE}, headers={"Authorization": "Bearer x"})
    assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
    assert client.get("/d/anything").status_code == 503


def test_a_hung_redis_fails_fast(tmp_path: Path) -> None:
    """Redis paused (CLIENT PAUSE: it accepts connections and answers nothing): /healthz says
    503 within 100 ms and a download 503 within SESAME_STORE_TIMEOUT, then both recover once
    Redis answers again."""
    import redis

    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as url:
        # T0, not NOW: Redis forgets a record once its link is long expired on its own clock.
        service = make_service(tmp_path, FakeClock(T0), store_url=url, store_timeout=0.5)
        client = TestClient(create_app(service.settings, service))
        path = path_of(service, service.share(FILE).url)
        with redis.Redis.from_url(url) as admin:
            admin.execute_command("CLIENT", "PAUSE", "4000", "ALL")
            started = time.monotonic()
            assert client.get("/healthz").status_code == 503
            assert time.monotonic() - started < 0.1
            started = time.monotonic()
            assert client.get(path).status_code == 503
            assert time.monotonic() - started < 2
            admin.execute_command("CLIENT", "UNPAUSE")
        assert client.get(path).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_a_damaged_database_is_exit_75_not_a_traceback(tmp_path: Path) -> None:
    """A database file that is not SQLite any more: the `sesame` command says so in one
    sentence and exits 75."""
    data = tmp_path / "state"
    data.mkdir()
    (data / "sesame.db").write_bytes(b"this is not a database\n" * 512)
    env = sesame_env(secret_keys=KEY, files_dir=str(tmp_path), data_dir=str(data))
    sesame = Path(sys.executable).parent / "sesame"
    result = subprocess.run([str(sesame), "links"], env=env, capture_output=True, text=True)
    assert result.returncode == 75, result.stderr
    assert "not a database" in result.stderr and "Traceback" not in result.stderr


def test_every_public_store_method_is_guarded() -> None:
    """Methods a store takes from its mixins (the download path, the log's queries) turn
    driver errors into StoreUnavailable as its own do."""
    wrapped = guarded(SQLiteStore, (sqlite3.OperationalError,))
    for name in ("begin_download", "end_download", "settle_lease", "renew_slot", "drop_ended"):
        assert getattr(wrapped, name) is not getattr(SQLiteStore, name), name


def test_the_api_reads_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """Reading links through the API needs no write: with the database locked by another
    process it answers, and a key's use is noted later (once a minute at most), never waited
    for; making a link, a write, is 503 as it must be."""
    clock = FakeClock()
    service = make_service(tmp_path, clock, store_timeout=TIMEOUT)
    auth = {"authorization": f"Bearer {service.create_api_key('bot').secret}"}
    shared = service.share(FILE)
    client = TestClient(create_app(service.settings, service))
    assert client.get(f"/api/links/{shared.link.id}", headers=auth).status_code == 200
    clock.advance(120)  # over a minute since the key's last use: this one is to be noted
    with write_locked(service.store.path, tmp_path / "locker.log"):  # type: ignore[attr-defined]
        started = time.monotonic()
        answer = client.get(f"/api/links/{shared.link.id}", headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == shared.link.id
        # Not after waiting the store's timeout for the lock (well apart, even on a slow host).
        assert time.monotonic() - started < TIMEOUT / 2
        made = client.post("/api/links", json={"file": FILE}, headers=auth)
        assert made.status_code == 503
        assert made.json()["error"] == "unavailable"
    (key,) = service.store.list_api_keys()
    assert key.last_used_at == NOW  # the use under the lock went unnoted, not waited for
    clock.advance(30)
    assert client.get(f"/api/links/{shared.link.id}", headers=auth).status_code == 200
    (key,) = service.store.list_api_keys()
    assert key.last_used_at == NOW + 150  # noted again once the file was free


def _env_of(service: Service) -> dict[str, str]:
    """The environment of a process on ``service``'s files and store, waiting TIMEOUT."""
    settings = service.settings
    return sesame_env(
        secret_keys=KEY,
        files_dir=str(settings.files_dir),
        data_dir=str(settings.data_dir),
        store_timeout=str(TIMEOUT),
    )


def test_everything_starts_and_reads_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """A database that needs no migration is only read as it opens: with another process
    holding its write lock (a backup, a long write), the `sesame` command's reads answer and
    a gateway starts, serves a link with no limit and writes its row once the lock is gone."""
    service = make_service(tmp_path, FakeClock(time.time()), store_timeout=TIMEOUT)
    shared = service.share(FILE)  # on the real clock, the gateway's
    service.store.close()
    env = _env_of(service)
    sesame = Path(sys.executable).parent / "sesame"
    with ExitStack() as locked:
        locked.enter_context(write_locked(service.store.path, tmp_path / "locker.log"))  # type: ignore[attr-defined]
        for command in (["files"], ["links", "--json"], ["apikey", "list"]):
            started = time.monotonic()
            done = subprocess.run([str(sesame), *command], env=env, capture_output=True, text=True)
            assert done.returncode == 0, (command, done.stderr)
            assert time.monotonic() - started < TIMEOUT  # it did not wait for the lock
            if command[0] == "links":
                assert shared.link.id in done.stdout
        # /healthz says 503 while the lock is held (it takes the lock to tell): /livez.
        with running_gateway(env, tmp_path / "gateway.log", ready="/livez") as base:
            answer = httpx.get(base + path_of(service, shared.url), timeout=10)
            assert answer.status_code == 200 and answer.content == BODY
            locked.close()  # the lock let go while the gateway runs; then it stops
    again = make_service(tmp_path, FakeClock(time.time()))
    assert [event.outcome for event in again.events(shared.link.id)] == [Outcome.COMPLETED]


def _timed(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.request(method, url, headers=headers, timeout=30).status_code
    return status, time.monotonic() - started


def test_requests_that_count_nothing_do_not_wait_for_a_locked_file(tmp_path: Path) -> None:
    """A HEAD, a preview card, a used-up or revoked link's 410 and a 416 only add a row to
    the log: with another process holding the file's write lock they are answered at once and
    their rows written once it is let go, as a download through an unlimited link is. Once
    the store was seen failing, a burst of them hears 503 at once, not each after the whole
    timeout in turn (they are decided one after another, in one thread)."""
    service = make_service(tmp_path, FakeClock(time.time()), store_timeout=TIMEOUT)
    link = service.share(FILE)
    gone = service.share(FILE)
    service.revoke(gone.link.id)
    service.store.close()
    env = _env_of(service)
    bot = {"user-agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
    with ExitStack() as locked:
        locked.enter_context(write_locked(service.store.path, tmp_path / "locker.log"))  # type: ignore[attr-defined]
        with running_gateway(env, tmp_path / "gateway.log", ready="/livez") as base:
            url, revoked = base + path_of(service, link.url), base + path_of(service, gone.url)
            answers = [
                _timed(url, method="HEAD"),
                _timed(url, bot),
                _timed(revoked),
                _timed(url, {"range": f"bytes={len(BODY)}-"}),
            ]
            assert [status for status, _ in answers] == [200, 200, 410, 416]
            assert max(took for _, took in answers) < TIMEOUT / 2
            # The flusher finds the file locked for the store's timeout: then nothing more
            # is held, and a row that cannot be written is a 503, at once.
            deadline, refused = time.monotonic() + 10 * TIMEOUT, 0
            while (status := _timed(revoked)[0]) != 503:
                assert status == 410 and time.monotonic() < deadline, "never seen failing"
                refused += 1  # held, to be written
            with ThreadPoolExecutor(8) as pool:
                burst = list(pool.map(lambda _: _timed(revoked), range(8)))
            assert [status for status, _ in burst] == [503] * 8
            assert max(took for _, took in burst) < TIMEOUT / 2
            locked.close()  # the lock let go while the gateway runs; then it stops
    again = make_service(tmp_path, FakeClock(time.time()))
    rows = sorted((event.outcome, event.status) for event in again.events())
    refusals = [(Outcome.REFUSED, 410)] * (1 + refused) + [(Outcome.REFUSED, 416)]
    assert rows == sorted([(Outcome.HEAD, 200), (Outcome.PREVIEW, 200), *refusals])


def test_after_the_store_came_back_rows_stay_in_order_and_are_held_again(tmp_path: Path) -> None:
    """A limited download that met the file locked leaves the store seen failing, with
    nothing held that a flusher could commit. The first row noted once the lock is gone is
    written after any row still held (the log stays in order), and its commit says the store
    works again: the next lock held elsewhere finds such rows held and answered, not 503."""
    service = make_service(tmp_path, FakeClock(time.time()), store_timeout=TIMEOUT)
    free = service.share(FILE)
    limited = service.share(FILE, max_downloads=100)
    service.store.close()
    env = _env_of(service)
    locker = tmp_path / "locker.log"
    with running_gateway(env, tmp_path / "gateway.log") as base:
        url, counted = base + path_of(service, free.url), base + path_of(service, limited.url)
        with write_locked(service.store.path, locker):  # type: ignore[attr-defined]
            assert httpx.get(counted, timeout=30).status_code == 503  # seen failing
        assert httpx.head(url, timeout=30).status_code == 200  # noted: the store works
        with write_locked(service.store.path, locker):  # type: ignore[attr-defined]
            assert httpx.head(url, timeout=30).status_code == 200  # held again
            # ... until the flusher finds the lock past the timeout, and a row is 503 again.
            deadline = time.monotonic() + 10 * TIMEOUT
            while (status := httpx.get(url, headers={"range": "bytes=999999-"}).status_code) != 503:
                assert status == 416 and time.monotonic() < deadline
        statuses = [httpx.head(url, timeout=30).status_code for _ in range(3)]
        assert statuses == [200] * 3
    again = make_service(tmp_path, FakeClock(time.time()))
    rows = list(reversed(again.events(free.link.id)))
    assert [row.at for row in rows] == sorted(row.at for row in rows)  # in the order they came
    assert [row.outcome for row in rows][:2] == [Outcome.HEAD, Outcome.HEAD]


WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO other VALUES (1)")
print("writing", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_a_file_another_process_is_writing_goes_to_wal_once_it_can(tmp_path: Path) -> None:
    """A database still in rollback-journal mode (new, being made by another process at the
    same moment) goes to WAL only with the file to itself, which SQLite refuses at once,
    without its busy wait, while another connection writes it: the store tries again, within
    its timeout, and opens once that write is over."""
    path = tmp_path / "sesame.db"
    with contextlib.closing(sqlite3.connect(path)) as made:
        made.execute("CREATE TABLE other (x)")
        made.commit()
    log = tmp_path / "writer.log"
    command = [sys.executable, "-c", WRITER, str(path), "0.5"]
    with subprocess.Popen(command, stdout=log.open("wb")) as process:
        wait_until(lambda: "writing" in log.read_text(), process, log)  # type: ignore[arg-type]
        store = SQLiteStore(path, timeout=TIMEOUT * 5)
        process.wait(timeout=10)
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.list_links() == []
    store.close()
