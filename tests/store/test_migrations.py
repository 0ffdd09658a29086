"""Schema versions: every schema SQLite databases were made with opens with today's store,
its records intact; a database newer than the code is refused; Redis keeps a version key."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame.activity import DayFile, LogFilter, Totals, iso_day
from sesame.errors import SchemaTooNew
from sesame.models import ApiKey, DownloadEvent, Link, Outcome, Rule
from sesame.service import Service
from sesame.settings import Settings
from sesame.store import open_store
from sesame.store.migrations import (
    REDIS_VERSION,
    SCHEMA_KEY,
    SQLITE_VERSION,
    statements,
)
from sesame.store.sqlite import SCHEMA, SQLiteStore
from tests.support import NOW, FakeClock

SCHEMAS = sorted((Path(__file__).parent / "schemas").glob("*.sql"))


def build_old(path: Path, schema: Path) -> None:
    """A database made with ``schema``, holding one row of each kind it has, written with
    only the columns it has (as the code of that time wrote them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(schema.read_text())
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    insert(
        db,
        "links",
        id="live0000001",
        file="hello.txt",
        created_at=NOW,
        expires_at=NOW + 3600,
        max_downloads=5,
        recipient="小明",
        note="n",
        downloads=1,
    )
    insert(
        db,
        "links",
        id="gone0000001",
        file="hello.txt",
        created_at=NOW - 100,
        expires_at=NOW + 600,
        revoked_at=NOW - 50,
    )
    insert(
        db,
        "downloads",
        link_id="live0000001",
        at=NOW + 1.5,
        client_ip="10.0.0.1",
        user_agent="curl/8",
        status=200,
        bytes_sent=14,
        outcome="completed",
        counted=1,
    )
    insert(
        db,
        "downloads",
        link_id="live0000001",
        at=NOW + 2.5,
        client_ip="10.0.0.2",
        user_agent="wget",
        status=206,
        bytes_sent=3,
        outcome="aborted",
    )
    if "rules" in tables:
        insert(
            db,
            "rules",
            key="芝麻开门",
            keyword="芝麻开门",
            file="hello.txt",
            lifetime=600,
            max_downloads=1,
            cooldown=60,
            template=None,
            landing=1,
            created_at=NOW,
        )
        insert(
            db,
            "issues",
            scope="芝麻开门",
            recipient="openid-1",
            link_id="live0000001",
            issued_at=NOW,
        )
        insert(
            db,
            "api_keys",
            id="key0001",
            name="bot",
            prefix="ses_ab",
            digest="d" * 64,
            created_at=NOW,
            revoked_at=None,
            last_used_at=NOW + 5,
        )
    if "egress" in tables:
        insert(db, "egress", day=NOW // 86400, bytes=17)
    db.commit()
    db.close()


def insert(db: sqlite3.Connection, table: str, **values: object) -> None:
    """Insert ``values``, leaving out the columns ``table`` did not have yet."""
    have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    names = [name for name in values if name in have]
    marks = ", ".join("?" for _ in names)
    db.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
        [values[name] for name in names],
    )


def shape(path: Path) -> tuple[set[tuple[str, ...]], set[str]]:
    """The columns (table, name, type, not null, default, key) and index names of a file."""
    db = sqlite3.connect(path)
    columns: set[tuple[str, ...]] = set()
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for row in db.execute(f"PRAGMA table_info({table})"):
            columns.add((table, *(str(v) for v in row[1:])))
    indexes = {
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        if not name.startswith("sqlite_autoindex")
    }
    db.close()
    return columns, indexes


def version(path: Path) -> int:
    db = sqlite3.connect(path)
    (found,) = db.execute("PRAGMA user_version").fetchone()
    db.close()
    return int(found)


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.stem for s in SCHEMAS])
def test_every_earlier_schema_opens_with_its_records_intact(
    schema: Path, settings: Settings, clock: FakeClock
) -> None:
    """A database of each shipped schema is migrated on open: links, log rows, rules, keys
    and bytes per day come back as they were, and its links still download."""
    path = settings.data_dir / "sesame.db"
    build_old(path, schema)
    service = Service.from_settings(settings, clock=clock)
    store = service.store
    assert version(path) == SQLITE_VERSION
    live = store.get_link("live0000001")
    assert live == Link("live0000001", "hello.txt", NOW, NOW + 3600, 5, "小明", "n", downloads=1)
    assert store.get_link("gone0000001") == Link(
        "gone0000001", "hello.txt", NOW - 100, NOW + 600, revoked_at=NOW - 50
    )
    assert store.list_events() == [
        DownloadEvent("live0000001", NOW + 2.5, "10.0.0.2", "wget", 206, 3, Outcome.ABORTED),
        DownloadEvent(
            "live0000001", NOW + 1.5, "10.0.0.1", "curl/8", 200, 14, Outcome.COMPLETED, True
        ),
    ]
    if "rules" in schema.read_text():
        assert store.list_rules() == [Rule("芝麻开门", "hello.txt", 600, 1, 60, None, True, NOW)]
        issued = Link("unused00001", "hello.txt", NOW + 10, NOW + 600)
        assert store.issue_link("芝麻开门", "openid-1", issued, 60) == live
        key = ApiKey("key0001", "bot", "ses_ab", "d" * 64, NOW, None, NOW + 5)
        assert store.list_api_keys() == [key]
    if "egress" in schema.read_text():
        assert store.egress(NOW // 86400, NOW // 86400) == {NOW // 86400: 17}
    while store.roll_up(1):  # the sums of its log, from nothing, answer as its rows do
        pass
    assert store.log_totals(LogFilter()) == Totals(1, 1, 0, 17, 2, 2)
    assert store.log_series(LogFilter()) == [
        DayFile(iso_day(int(NOW // 86400)), "hello.txt", 1, 17)
    ]
    answer = TestClient(create_app(settings, service)).get(service.link("live0000001").url)
    assert (answer.status_code, answer.content) == (200, b"hello, sesame\n")
    assert store.get_link("live0000001").downloads == 2  # type: ignore[union-attr]
    store.close()


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.stem for s in SCHEMAS])
def test_a_migrated_database_has_the_shape_of_a_new_one(schema: Path, tmp_path: Path) -> None:
    """Migrating from each earlier schema ends with the tables, columns and indexes that
    SCHEMA gives a new database (so a new step and a changed SCHEMA must agree)."""
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    build_old(old, schema)
    SQLiteStore(old).close()
    SQLiteStore(new).close()
    assert shape(old) == shape(new)


def test_a_new_database_gets_the_latest_version(tmp_path: Path) -> None:
    """A new file gets SCHEMA and the latest version at once; opening it again changes
    nothing."""
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    assert version(path) == SQLITE_VERSION
    SQLiteStore(path).close()
    assert version(path) == SQLITE_VERSION


def test_a_newer_database_is_refused_with_a_sentence(tmp_path: Path) -> None:
    """A database whose version is past the code's is refused with SchemaTooNew, untouched."""
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SQLITE_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaTooNew, match="newer version of Sesame") as caught:
        open_store(f"sqlite:///{path}", retention=60)
    assert (caught.value.version, caught.value.known) == (SQLITE_VERSION + 1, SQLITE_VERSION)
    assert version(path) == SQLITE_VERSION + 1


def test_a_failed_step_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step is one transaction: a step that fails half way changes nothing."""
    from sesame.store import migrations

    path = tmp_path / "old.db"
    build_old(path, SCHEMAS[0])
    before = shape(path)

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE links ADD COLUMN rate INTEGER")
        raise RuntimeError("step failed")

    monkeypatch.setattr(migrations, "SQLITE_STEPS", [half_then_fail])
    with pytest.raises(RuntimeError):
        SQLiteStore(path)
    assert (shape(path), version(path)) == (before, 0)


def test_statements_splits_a_script() -> None:
    """statements() gives SCHEMA back statement by statement, comments kept inside, a
    trigger's body (with its own semicolons) in one piece."""
    found = statements(SCHEMA)
    assert all(sqlite3.complete_statement(s) for s in found)
    assert found[0].startswith("CREATE TABLE IF NOT EXISTS links")
    assert " ".join(found).split() == SCHEMA.split()
    triggers = [s for s in found if s.startswith("CREATE TRIGGER")]
    assert len(triggers) == 2 and all(s.endswith("END;") for s in triggers)


def test_redis_gets_a_version_key(redis_url: str) -> None:
    """An empty Redis database gets the latest version; one with data and no key is
    version 1, the layout since the Redis store began, and is brought up to date."""
    open_store(redis_url, retention=60).close()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.get(SCHEMA_KEY) == str(REDIS_VERSION)
    client.flushall()
    client.zadd("sesame:links", {"L1": NOW})
    open_store(redis_url, retention=60).close()
    assert client.get(SCHEMA_KEY) == str(REDIS_VERSION)
    assert client.hgetall("sesame:rollups") == {"0": "0-0"}  # step 2: sums from nothing
    client.close()


def test_a_version_1_redis_opens_with_its_records_and_log_summed(
    redis_url: str, settings: Settings, clock: FakeClock
) -> None:
    """A Redis database as version 1 wrote it (records, the stream with its ids in the
    server's time, each link's list; no sums, no index by status) is migrated on open: its
    records come back, indexed by status and file, its sums roll up from nothing and
    answer as its rows do, and its link downloads."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    record = {"id": "live0000001", "file": "hello.txt", "created_at": NOW}
    record |= {"expires_at": NOW + 3600, "max_downloads": 5, "downloads": 1}
    record |= {"bytes_served": 14, "landing": 0, "recipient": "小明"}
    client.hset("sesame:link:live0000001", mapping=record)  # type: ignore[arg-type]
    client.zadd("sesame:links", {"live0000001": NOW})
    for link_id, file, more in [
        ("revoked0001", "b.zip", {"revoked_at": NOW}),
        ("usedup00001", "b.zip", {"max_downloads": 1, "downloads": 1}),
    ]:
        other = record | {"id": link_id, "file": file, "max_downloads": 0, "downloads": 0}
        other = {**{k: v for k, v in other.items() if k != "max_downloads"}, **more}
        client.hset(f"sesame:link:{link_id}", mapping=other)  # type: ignore[arg-type]
        client.zadd("sesame:links", {link_id: NOW - 1})
    rows = [
        ("curl/8", 200, 14, "completed", True, NOW + 1.5, "10.0.0.1"),
        ("wget", 206, 3, "aborted", False, NOW + 2.5, "10.0.0.2"),
    ]
    for agent, status, sent, outcome, counted, at, ip in rows:
        data = json.dumps(
            {"link_id": "live0000001", "at": at, "client_ip": ip, "user_agent": agent}
            | {"status": status, "bytes_sent": sent, "outcome": outcome, "counted": counted}
        )
        client.xadd("sesame:events", {"e": data})
        client.lpush("sesame:events:live0000001", data)
    client.set(SCHEMA_KEY, 1)
    settings = settings.model_copy(update={"store_url": redis_url})
    service = Service.from_settings(settings, clock=clock)
    store = service.store
    assert client.get(SCHEMA_KEY) == str(REDIS_VERSION)
    assert store.get_link("live0000001") == Link(
        "live0000001", "hello.txt", NOW, NOW + 3600, 5, "小明", downloads=1, bytes_served=14
    )
    assert [event.outcome for event in store.list_events()] == ["aborted", "completed"]
    # step 3: the links by status and by file
    assert store.link_counts(NOW) == {"active": 1, "revoked": 1, "used up": 1}
    assert store.link_counts(NOW + 3601) == {"expired": 1, "revoked": 1, "used up": 1}
    assert store.link_files() == ["b.zip", "hello.txt"]
    while store.roll_up(1):
        pass
    assert store.log_totals(LogFilter()) == Totals(1, 1, 0, 17, 2, 2)
    assert store.log_totals(LogFilter(since=NOW + 2)) == Totals(0, 1, 0, 3, 1, 1)
    assert store.log_series(LogFilter(), 8 * 3600) == [
        DayFile(iso_day(int((NOW + 8 * 3600) // 86400)), "hello.txt", 1, 17)
    ]
    answer = TestClient(create_app(settings, service)).get(service.link("live0000001").url)
    assert (answer.status_code, answer.content) == (200, b"hello, sesame\n")
    assert store.get_link("live0000001").downloads == 2  # type: ignore[union-attr]
    store.close()
    client.close()


def test_a_redis_down_as_the_store_opens_is_brought_up_to_date_later(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store opened while Redis is down still opens; the first page query or sweep once
    Redis answers brings the database up to date (here from version 2: the links' index
    is made from the records), and answers from it."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    record = {"id": "live0000001", "file": "hello.txt", "created_at": NOW}
    record |= {"expires_at": NOW + 3600, "downloads": 0, "bytes_served": 0, "landing": 0}
    client.hset("sesame:link:live0000001", mapping=record)  # type: ignore[arg-type]
    client.zadd("sesame:links", {"live0000001": NOW})
    client.set(SCHEMA_KEY, 2)

    def down(*args: object) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr("sesame.store.redis.migrate_redis", down)
    store = open_store(redis_url, retention=20 * 365 * 86400)
    assert client.get(SCHEMA_KEY) == "2"
    assert store.link_counts(NOW) == {"active": 1}
    assert client.get(SCHEMA_KEY) == str(REDIS_VERSION)
    assert store.link_files() == ["hello.txt"]
    store.close()
    client.close()


def test_a_newer_redis_is_refused(redis_url: str) -> None:
    """A Redis database whose version is past the code's is refused with SchemaTooNew."""
    client = redis.Redis.from_url(redis_url)
    client.set(SCHEMA_KEY, REDIS_VERSION + 1)
    client.close()
    with pytest.raises(SchemaTooNew, match="newer version of Sesame"):
        open_store(redis_url, retention=60)


def test_the_cli_says_a_newer_database_in_one_sentence(settings: Settings) -> None:
    """`sesame links` on a database newer than the code exits 65 with one sentence, no
    traceback."""
    from click.testing import CliRunner

    from sesame.cli import cli

    path = settings.data_dir / "sesame.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SQLITE_VERSION + 1}")
    db.close()
    factory = {"factory": lambda: Service.from_settings(settings)}
    result = CliRunner().invoke(cli, ["links"], obj=factory)
    assert result.exit_code == 65
    assert result.stderr.startswith("sesame: The store ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
