"""Backups and export: the README's backup and restore, run as written on a live store;
`sesame log export`; Redis says how it is backed up; the Activity page's CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from gateway.app import create_app
from sesame.cli import cli
from sesame.service import Service
from sesame.settings import load_settings
from tests.support import BIN, KEY, REPO, SAMPLES, FakeClock, sesame_env, write_files


def readme_commands() -> list[str]:
    """The shell lines of the README's section on backing up and restoring."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Upgrading, backing up and restoring", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]


def live_service(site: Path) -> Service:
    settings = load_settings(secret_keys=KEY, files_dir=site / "files", public_url="http://s.test")
    return Service.from_settings(settings)


def test_backup_and_restore_as_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sesame backup` copies a store in use (the gateway's connection open, WAL not yet
    written back); restored as the README says, the copy has the state of its moment and
    its links download."""
    site = tmp_path / "site"
    write_files(site / "files", SAMPLES)
    monkeypatch.chdir(site)
    live = live_service(site)
    gateway = TestClient(create_app(live.settings, live))
    shared = live.share("hello.txt", lifetime="1h", max_downloads=5)
    assert gateway.get(shared.url).status_code == 200
    backup, restore = readme_commands()
    env = sesame_env(secret_keys=KEY, files_dir=str(site / "files"))
    command = backup.replace(".venv/bin/", f"{BIN}/")
    done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert gateway.get(shared.url).status_code == 200  # after the backup: not in it
    live.store.close()
    for leftover in (".sesame/sesame.db-wal", ".sesame/sesame.db-shm"):
        (site / leftover).unlink(missing_ok=True)
    subprocess.run(restore, shell=True, check=True)
    restored = live_service(site)
    assert restored.link(shared.link.id).link.downloads == 1
    answer = TestClient(create_app(restored.settings, restored)).get(shared.url)
    assert (answer.status_code, answer.content) == (200, SAMPLES["hello.txt"])
    assert len(restored.events()) == 2
    restored.store.close()


def test_backup_refuses_an_existing_file(service: Service, tmp_path: Path) -> None:
    """A backup never overwrites a file: it says so and leaves it."""
    target = tmp_path / "kept.db"
    target.write_bytes(b"mine")
    result = CliRunner().invoke(cli, ["backup", str(target)], obj={"factory": lambda: service})
    assert result.exit_code == 1 and "exists already" in result.stderr
    assert target.read_bytes() == b"mine"


def test_a_redis_store_says_how_to_back_it_up(redis_url: str, tmp_path: Path) -> None:
    """With Redis, `sesame backup` writes nothing and says to use BGSAVE and dump.rdb."""
    settings = load_settings(secret_keys=KEY, files_dir=tmp_path, store_url=redis_url)
    service = Service.from_settings(settings)
    result = CliRunner().invoke(
        cli, ["backup", str(tmp_path / "x.db")], obj={"factory": lambda: service}
    )
    assert result.exit_code == 1
    assert "BGSAVE" in result.stderr and "dump.rdb" in result.stderr
    assert not (tmp_path / "x.db").exists()
    service.store.close()


def downloaded(service: Service, clock: FakeClock) -> list[str]:
    """Three downloads a day apart; the link ids."""
    client = TestClient(create_app(service.settings, service))
    ids = []
    for name in ("hello.txt", "芝麻 开门.txt", 'say "hi".txt'):
        shared = service.share(name, lifetime="1h", recipient="小明")
        assert client.get(shared.url).status_code == 200
        ids.append(shared.link.id)
        clock.advance(86400)
    return ids


def test_log_export_csv_and_jsonl(service: Service, clock: FakeClock) -> None:
    """`sesame log export` prints every row oldest first, as CSV with a header or as JSON
    Lines; --since keeps the later ones."""
    ids = downloaded(service, clock)
    factory = {"factory": lambda: service}
    result = CliRunner().invoke(cli, ["log", "export"], obj=factory)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["link"] for row in rows] == ids
    assert rows[1]["file"] == "芝麻 开门.txt" and rows[1]["recipient"] == "小明"
    assert rows[0]["outcome"] == "completed" and rows[0]["counted"] == "True"
    result = CliRunner().invoke(
        cli, ["log", "export", "--since", "36h", "--format", "jsonl"], obj=factory
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["link"] for record in records] == ids[2:]
    assert records[0]["time"].endswith("+00:00")
