"""The ``sesame`` command, driven through click's runner with a Service built from test settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from sesame.cli import cli
from sesame.service import Service
from tests.support import NOW


def run(service: Service | None, *args: str) -> Result:
    obj = {} if service is None else {"factory": lambda: service}
    return CliRunner().invoke(cli, list(args), obj=obj)


def assert_clean_error(result: Result, code: int) -> None:
    """Exit code ``code``, one sentence on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.strip() and "Traceback" not in result.stderr
    assert isinstance(result.exception, SystemExit)


def test_link_json(service: Service) -> None:
    """link --json prints exactly one JSON object with the contract's fields."""
    options = ["--ttl", "2h", "--max-downloads", "3", "--recipient", "小明", "--json"]
    result = run(service, "link", "芝麻 开门.txt", *options)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert {"id", "url", "file", "expires_at", "max_downloads", "recipient"} <= data.keys()
    assert data["url"].startswith("http://sesame.test/d/")
    assert (data["file"], data["max_downloads"], data["recipient"]) == ("芝麻 开门.txt", 3, "小明")
    expires = datetime.fromisoformat(data["expires_at"])
    assert expires.utcoffset() == timedelta(0)
    assert expires == datetime.fromtimestamp(NOW, UTC) + timedelta(hours=2)
    assert service.link(data["id"]).url == data["url"]


def test_link_plain(service: Service) -> None:
    """Without --json, link prints the URL first, then the file and expiry, then a QR code."""
    result = run(service, "link", "hello.txt", "--ttl", "90s")
    assert result.exit_code == 0
    url, summary, *qr = result.stdout.splitlines()
    assert url == service.links()[0].url
    assert "hello.txt" in summary and "1m30s" in summary
    assert len(qr) > 10


def test_link_no_qr(service: Service) -> None:
    """--no-qr prints only the URL and the summary line."""
    result = run(service, "link", "hello.txt", "--no-qr")
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["link", "missing.txt"], 3, "missing.txt"),
        (["link", "../etc/passwd"], 3, "not a file you can share"),
        (["link", "hello.txt", "--ttl", "soon"], 2, "not a lifetime"),
        (["link", "hello.txt", "--ttl", "30d"], 2, "SESAME_MAX_LIFETIME"),
        (["link", "hello.txt", "--max-downloads", "0"], 2, "max-downloads"),
        (["link", "hello.txt", "--recipient", "x" * 501], 2, "longer than 500"),
        (["revoke", "nope"], 4, "nope"),
        (["link"], 2, "FILE"),
        (["nonsense"], 2, "nonsense"),
    ],
)
def test_errors(service: Service, args: list[str], code: int, says: str) -> None:
    """Errors go to stderr as a sentence with their exit code (2, 3, 4) and no traceback."""
    result = run(service, *args)
    assert_clean_error(result, code)
    assert says in result.stderr


def test_unusable_settings_exit_78(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unusable settings exit with 78 (EX_CONFIG) and say which variable is wrong."""
    monkeypatch.setenv("SESAME_SECRET_KEYS", "short")
    result = run(None, "links")
    assert_clean_error(result, 78)
    assert "SESAME_SECRET_KEYS" in result.stderr


def test_links_json(service: Service) -> None:
    """links --json lists active links; --all adds revoked ones, each with its status."""
    kept = json.loads(run(service, "link", "hello.txt", "--json").stdout)
    gone = json.loads(run(service, "link", "hello.txt", "--json").stdout)
    assert run(service, "revoke", gone["id"]).exit_code == 0
    active = json.loads(run(service, "links", "--json").stdout)
    assert [(item["id"], item["status"]) for item in active] == [(kept["id"], "active")]
    everything = json.loads(run(service, "links", "--all", "--json").stdout)
    statuses = {item["id"]: item["status"] for item in everything}
    assert statuses == {kept["id"]: "active", gone["id"]: "revoked"}


def test_links_json_is_written_as_one_list_would_be(service: Service) -> None:
    """links --all --json, written a thousand links at a time, prints what json.dumps of
    the whole list with indent=2 prints, past the first thousand too."""
    for _ in range(1003):
        service.share("hello.txt", recipient="小明")
    printed = run(service, "links", "--all", "--json", "--limit", "0").stdout
    assert printed == json.dumps(json.loads(printed), ensure_ascii=False, indent=2) + "\n"
    assert len(json.loads(printed)) == 1003


def test_links_lines_past_the_first_thousand(service: Service) -> None:
    """links --all, written a thousand lines at a time, prints one line per link in the
    store's order (newest first), past the first thousand too, nothing between the chunks."""
    made = {service.share("hello.txt").link.id for _ in range(1003)}
    lines = run(service, "links", "--all", "--limit", "0").stdout.splitlines()
    listed = [line.split("\t")[0] for line in lines]
    assert listed == [link.id for link in service.link_records()]
    assert set(listed) == made and len(listed) == 1003


def test_links_lists_the_newest_thousand_and_says_how_many_more(service: Service) -> None:
    """links lists the newest 1,000 links unless --limit says otherwise, and says on
    stderr how many it left out (the JSON stays one list); none left out, nothing said."""
    for _ in range(1003):
        service.share("hello.txt")
    made = [link.id for link in service.link_records()]  # newest first, then by id
    result = run(service, "links")
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == made[:1000]
    assert result.stderr == "The newest 1,000 of 1,003 links; --limit 0 lists them all.\n"
    result = run(service, "links", "--all", "--limit", "2", "--json")
    assert [item["id"] for item in json.loads(result.stdout)] == made[:2]
    assert "The newest 2 of 1,003 links" in result.stderr
    assert run(service, "links", "--limit", "1003").stderr == ""
    assert "--limit" in run(service, "links", "--limit", "-1").stderr  # a usage error


def test_links_json_empty(service: Service) -> None:
    """With no links, links --json prints an empty JSON list."""
    assert json.loads(run(service, "links", "--json").stdout) == []


def test_links_plain(service: Service) -> None:
    """links prints one line per link; an empty list says so."""
    assert "No active links" in run(service, "links").stdout
    made = json.loads(run(service, "link", "hello.txt", "--json").stdout)
    lines = run(service, "links").stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(made["id"]) and "hello.txt" in lines[0]


def test_revoke(service: Service) -> None:
    """revoke ID confirms on stdout, and the link is refused from then on."""
    made = json.loads(run(service, "link", "hello.txt", "--json").stdout)
    result = run(service, "revoke", made["id"])
    assert result.exit_code == 0
    assert made["id"] in result.stdout
    assert service.link(made["id"]).link.revoked_at == NOW


def test_files_json(service: Service) -> None:
    """files --json lists every shareable file with size, hash and media type."""
    result = run(service, "files", "--json")
    assert result.exit_code == 0
    listed = {item["name"]: item for item in json.loads(result.stdout)}
    assert listed.keys() == {f.name for f in service.files()}
    assert listed["hello.txt"]["size"] == 14
    assert listed["page.html"]["media_type"] == "text/html"
    assert len(listed["hello.txt"]["sha256"]) == 64


def test_files_plain(service: Service) -> None:
    """files prints one line per file."""
    assert len(run(service, "files").stdout.splitlines()) == len(service.files())


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        *([command, "--help"] for command in ("link", "links", "revoke", "files")),
    ],
)
def test_help(args: list[str]) -> None:
    """--help works for the command and each subcommand without building a Service."""
    result = run(None, *args)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage:")


def test_version() -> None:
    """--version prints the version."""
    result = run(None, "--version")
    assert result.exit_code == 0 and "0.1.0" in result.stdout


def test_link_rate(service: Service) -> None:
    """link --rate caps each download's speed; --rate 0 or nonsense is handled."""
    result = run(service, "link", "hello.txt", "--rate", "500KiB", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rate"] == 512_000 and service.link(data["id"]).link.rate == 512_000
    plain = json.loads(run(service, "link", "hello.txt", "--json").stdout)
    assert plain["rate"] is None
    assert_clean_error(run(service, "link", "hello.txt", "--rate", "fast"), 2)


@pytest.mark.parametrize(
    "option",
    [
        ["--max-downloads", str(2**63)],
        ["--max-downloads", str(2**63 - 1)],
        ["--ttl", "9" * 5000],
        ["--ttl", "²"],
        ["--rate", "99999999999999999999TB"],
    ],
)
def test_huge_numbers_are_a_clear_error(service: Service, option: list[str]) -> None:
    """A number too large to mean anything is exit code 2 with a sentence, never a crash."""
    result = run(service, "link", "hello.txt", *option)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
