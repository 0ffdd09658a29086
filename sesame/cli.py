"""The ``sesame`` command: share files, list and revoke links, manage keyword rules and API
keys from a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from sesame import __version__, export, qr
from sesame.activity import LogFilter
from sesame.errors import (
    ApiKeyNotFound,
    ConfigError,
    FileMissing,
    InvalidInput,
    LinkNotFound,
    RuleNotFound,
    SchemaTooNew,
    SesameError,
    StoreUnavailable,
)
from sesame.lifetimes import format_lifetime, parse_lifetime
from sesame.models import ApiKey, Link, LinkStatus, Rule, human_size, utc
from sesame.service import MAX_DOWNLOADS, Service
from sesame.settings import load_settings

LANDING_HELP = (
    "Browsers see a page with the file's name, size, SHA-256 and time left, and a download"
    " button, before the download."
)

# One place where errors become exit codes (sysexits.h where one fits).
EXIT_CODES: dict[type[SesameError], int] = {
    InvalidInput: 2,
    FileMissing: 3,
    LinkNotFound: 4,
    RuleNotFound: 4,
    ApiKeyNotFound: 4,
    StoreUnavailable: 75,  # EX_TEMPFAIL: try again later
    ConfigError: 78,
    SchemaTooNew: 65,  # EX_DATAERR
}


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    try:
        yield
    except SesameError as exc:
        click.echo(f"sesame: {exc}", err=True)
        code = next((c for kind, c in EXIT_CODES.items() if isinstance(exc, kind)), 1)
        sys.exit(code)


def _service(ctx: click.Context) -> Service:
    factory: Callable[[], Service] = ctx.obj["factory"]
    if "service" not in ctx.obj:
        ctx.obj["service"] = factory()
    service: Service = ctx.obj["service"]
    return service


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sesame")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Sesame: share files from SESAME_FILES_DIR with signed links that expire.

    Settings come from SESAME_* environment variables and a .env file in the current folder.
    """
    ctx.ensure_object(dict)
    ctx.obj.setdefault("factory", lambda: Service.from_settings(load_settings()))


F = TypeVar("F", bound=Callable[..., Any])


def _link_options(which: str) -> Callable[[F], F]:
    """The --ttl and --max-downloads options, for ``which`` ("the link", "each link")."""

    def decorate(command: F) -> F:
        command = click.option(
            "--max-downloads",
            type=click.IntRange(min=1, max=MAX_DOWNLOADS),
            default=None,
            help=f"How many complete downloads {which} allows. [default: no limit]",
        )(command)
        return click.option(
            "--ttl",
            "lifetime",
            metavar="LIFETIME",
            default=None,
            help=f"How long {which} works, like 90s, 10m, 2h, 7d."
            " [default: SESAME_DEFAULT_LIFETIME]",
        )(command)

    return decorate


@cli.command()
@click.argument("file")
@_link_options("the link")
@click.option("--recipient", default=None, help="Who the link is for (shown in the log).")
@click.option("--note", default=None, help="A note for yourself.")
@click.option("--landing", is_flag=True, help=LANDING_HELP)
@click.option(
    "--rate",
    default=None,
    help="Cap each download's speed, like 500KiB (a second); 0 for none "
    "(default: SESAME_DEFAULT_LINK_RATE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
@click.option("--no-qr", is_flag=True, help="Do not draw the QR code.")
@click.pass_context
def link(
    ctx: click.Context,
    file: str,
    lifetime: str | None,
    max_downloads: int | None,
    recipient: str | None,
    note: str | None,
    landing: bool,
    rate: str | None,
    as_json: bool,
    no_qr: bool,
) -> None:
    """Make a link to FILE (a name inside SESAME_FILES_DIR) and print it with a QR code."""
    with _errors_to_exit_codes():
        shared = _service(ctx).share(file, lifetime, max_downloads, recipient, note, landing, rate)
    if as_json:
        _print_json(shared.as_dict())
        return
    expires = utc(shared.link.expires_at)
    click.echo(shared.url)
    click.echo(
        f"{shared.link.file} · expires {expires:%Y-%m-%d %H:%M:%S} UTC"
        f" (in {format_lifetime(shared.link.lifetime)})"
        + (f" · {max_downloads} download(s)" if max_downloads else "")
    )
    if not no_qr:
        click.echo(qr.text(shared.url), nl=False)


@cli.command()
@click.option(
    "--all", "include_all", is_flag=True, help="Include expired, revoked and used-up links."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list and nothing else.")
@click.pass_context
def links(ctx: click.Context, include_all: bool, as_json: bool) -> None:
    """List links, newest first (only the active ones without --all)."""
    with _errors_to_exit_codes():
        service = _service(ctx)
        records = service.link_records(() if include_all else (LinkStatus.ACTIVE,))
        if as_json:
            # The list json.dumps(indent=2) would print, written a thousand links at a
            # time: their URLs minted as they are printed, not 100,000 dicts held at once.
            for start in range(0, len(records), 1000):
                items = (
                    service.shared(link).as_dict() | {"status": _status(service, link)}
                    for link in records[start : start + 1000]
                )
                text = ",\n".join(json.dumps(i, ensure_ascii=False, indent=2) for i in items)
                text = "  " + text.replace("\n", "\n  ")  # inside the list
                click.echo(("[\n" if start == 0 else ",\n") + text, nl=False)
            click.echo("\n]" if records else "[]")
            return
        # The lines show no URL: no token to mint for each of (perhaps) 100,000 links.
    if not records:
        click.echo("No links." if include_all else "No active links (see --all).")
        return
    for link in records:
        click.echo(_link_line(service, link))


@cli.command()
@click.argument("link_id", metavar="ID")
@click.pass_context
def revoke(ctx: click.Context, link_id: str) -> None:
    """Revoke the link ID; the gateway refuses it from the next request on."""
    with _errors_to_exit_codes():
        revoked = _service(ctx).revoke(link_id)
    click.echo(f"Revoked {revoked.id} ({revoked.file}).")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list and nothing else.")
@click.pass_context
def files(ctx: click.Context, as_json: bool) -> None:
    """List the files you can share."""
    with _errors_to_exit_codes():
        infos = _service(ctx).files()
    if as_json:
        _print_json([info.as_dict() for info in infos])
        return
    if not infos:
        click.echo("No files yet: put some in SESAME_FILES_DIR.")
    for info in infos:
        click.echo(f"{info.name}\t{human_size(info.size)}\t{info.sha256[:12]}")


@cli.group()
def rule() -> None:
    """Keyword rules: what the WeChat Official Account answers to a keyword."""


@rule.command("add")
@click.argument("keyword")
@click.argument("file")
@_link_options("each link")
@click.option(
    "--cooldown",
    metavar="LIFETIME",
    default=None,
    help="A sender asking again within this time gets their last link back; 0 for never."
    " [default: the link's lifetime]",
)
@click.option(
    "--template",
    default=None,
    help="The reply, with {url}, {file}, {size}, {sha256}, {expires}, {minutes}."
    " [default: a Chinese and English reply like the one in the README]",
)
@click.option("--landing", is_flag=True, help=LANDING_HELP)
@click.option("--replace", is_flag=True, help="Replace the keyword's rule if it has one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
@click.pass_context
def rule_add(
    ctx: click.Context,
    keyword: str,
    file: str,
    lifetime: str | None,
    max_downloads: int | None,
    cooldown: str | None,
    template: str | None,
    landing: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Answer KEYWORD with a fresh link to FILE (a name inside SESAME_FILES_DIR)."""
    with _errors_to_exit_codes():
        added = _service(ctx).add_rule(
            keyword, file, lifetime, max_downloads, cooldown, template, landing, replace
        )
    if as_json:
        _print_json(added.as_dict())
        return
    click.echo(f"Keyword {added.keyword!r} now answers with {_rule_line(added)}.")


@rule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list and nothing else.")
@click.pass_context
def rule_list(ctx: click.Context, as_json: bool) -> None:
    """List the keyword rules."""
    with _errors_to_exit_codes():
        found = _service(ctx).rules()
    if as_json:
        _print_json([item.as_dict() for item in found])
        return
    if not found:
        click.echo("No keyword rules yet: see sesame rule add --help.")
    for item in found:
        click.echo(f"{item.keyword}\t{_rule_line(item)}")


@rule.command("remove")
@click.argument("keyword")
@click.pass_context
def rule_remove(ctx: click.Context, keyword: str) -> None:
    """Stop answering KEYWORD; links already sent keep working."""
    with _errors_to_exit_codes():
        removed = _service(ctx).remove_rule(keyword)
    click.echo(f"Removed the rule for {removed.keyword!r}.")


@cli.group()
def apikey() -> None:
    """API keys for bots and scripts that ask for links over HTTP."""


@apikey.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
@click.pass_context
def apikey_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Make an API key called NAME. The key is shown this once; only its hash is kept."""
    with _errors_to_exit_codes():
        created = _service(ctx).create_api_key(name)
    if as_json:
        _print_json(created.as_dict())
        return
    click.echo(created.secret)
    click.echo(
        f"API key {created.api_key.id} ({created.api_key.name}). Copy it now: it is shown"
        " only this once. Use it as: Authorization: Bearer <key>",
        err=True,
    )


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list and nothing else.")
@click.pass_context
def apikey_list(ctx: click.Context, as_json: bool) -> None:
    """List API keys (their first letters only), newest first."""
    with _errors_to_exit_codes():
        found = _service(ctx).api_keys()
    if as_json:
        _print_json([item.as_dict() for item in found])
        return
    if not found:
        click.echo("No API keys yet: see sesame apikey create --help.")
    for item in found:
        click.echo(_key_line(item))


@apikey.command("revoke")
@click.argument("key_id", metavar="ID")
@click.pass_context
def apikey_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke the API key ID; it is refused from the next request on."""
    with _errors_to_exit_codes():
        revoked = _service(ctx).revoke_api_key(key_id)
    click.echo(f"Revoked API key {revoked.id} ({revoked.name}).")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, path: Path) -> None:
    """Write a consistent copy of the store to PATH (a new file), while gateways run."""
    with _errors_to_exit_codes():
        _service(ctx).backup(path)
    click.echo(f"Backed up to {path}.")


@cli.group()
def log() -> None:
    """The download log."""


@log.command("export")
@click.option("--since", help="Rows from then on: a time ago (7d, 12h) or a date (2026-01-31).")
@click.option("--format", "fmt", type=click.Choice(export.FORMATS), default="csv")
@click.pass_context
def log_export(ctx: click.Context, since: str | None, fmt: str) -> None:
    """Print the log, oldest first, as CSV (with a header) or JSON Lines, as it is read."""
    with _errors_to_exit_codes():
        service = _service(ctx)
        query = LogFilter(since=_since(service, since) if since else None)
        for line in service.export_log(query, fmt):
            click.echo(line, nl=False)


def _since(service: Service, text: str) -> float:
    """A date or time (UTC unless it says otherwise), or a lifetime before now."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return service.clock() - parse_lifetime(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _rule_line(item: Rule) -> str:
    limit = f", {item.max_downloads} download(s)" if item.max_downloads else ""
    cooldown = format_lifetime(item.cooldown) if item.cooldown else "none"
    landing = ", landing page" if item.landing else ""
    return (
        f"{item.file}: {format_lifetime(item.lifetime)} links{limit}{landing}, cool-down {cooldown}"
    )


def _key_line(item: ApiKey) -> str:
    state = f"revoked {utc(item.revoked_at):%Y-%m-%d}" if item.revoked_at else "active"
    used = f"last used {utc(item.last_used_at):%Y-%m-%d %H:%M}" if item.last_used_at else ""
    fields = [item.id, f"{item.prefix}…", item.name, state, used]
    return "\t".join(fields).rstrip()


def _status(service: Service, link: Link) -> str:
    return link.status(service.clock()).value


def _link_line(service: Service, link: Link) -> str:
    left = max(0, link.expires_at - int(service.clock()))
    expiry = f"expires {utc(link.expires_at):%Y-%m-%d %H:%M} UTC"
    if left:
        expiry += f" ({format_lifetime(left)} left)"
    limit = f"{link.downloads}/{link.max_downloads or '∞'}"
    fields = [link.id, _status(service, link), link.file, limit, expiry, link.recipient or ""]
    return "\t".join(fields).rstrip()


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def main() -> None:
    """Console entry point."""
    cli(obj={})
