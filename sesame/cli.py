"""The ``sesame`` command: share files, list and revoke links from a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from sesame import __version__, qr
from sesame.errors import (
    ConfigError,
    FileMissing,
    InvalidInput,
    LinkNotFound,
    SesameError,
)
from sesame.lifetimes import format_lifetime
from sesame.models import SharedLink, human_size, utc
from sesame.service import Service
from sesame.settings import load_settings

# One place where errors become exit codes (sysexits.h where one fits).
EXIT_CODES: dict[type[SesameError], int] = {
    InvalidInput: 2,
    FileMissing: 3,
    LinkNotFound: 4,
    ConfigError: 78,
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


@cli.command()
@click.argument("file")
@click.option(
    "--ttl",
    "lifetime",
    metavar="LIFETIME",
    default=None,
    help="How long the link works, like 90s, 10m, 2h, 7d. [default: SESAME_DEFAULT_LIFETIME]",
)
@click.option(
    "--max-downloads",
    type=click.IntRange(min=1),
    default=None,
    help="How many complete downloads the link allows. [default: no limit]",
)
@click.option("--recipient", default=None, help="Who the link is for (shown in the log).")
@click.option("--note", default=None, help="A note for yourself.")
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
    as_json: bool,
    no_qr: bool,
) -> None:
    """Make a link to FILE (a name inside SESAME_FILES_DIR) and print it with a QR code."""
    with _errors_to_exit_codes():
        shared = _service(ctx).share(file, lifetime, max_downloads, recipient, note)
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
        shared = service.links(include_inactive=include_all)
    if as_json:
        _print_json([item.as_dict() | {"status": _status(service, item)} for item in shared])
        return
    if not shared:
        click.echo("No links." if include_all else "No active links (see --all).")
        return
    for item in shared:
        click.echo(_link_line(service, item))


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


def _status(service: Service, item: SharedLink) -> str:
    return item.link.status(service.clock()).value


def _link_line(service: Service, item: SharedLink) -> str:
    link = item.link
    left = max(0, link.expires_at - int(service.clock()))
    expiry = f"expires {utc(link.expires_at):%Y-%m-%d %H:%M} UTC"
    if left:
        expiry += f" ({format_lifetime(left)} left)"
    limit = f"{link.downloads}/{link.max_downloads or '∞'}"
    fields = [link.id, _status(service, item), link.file, limit, expiry, link.recipient or ""]
    return "\t".join(fields).rstrip()


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def main() -> None:
    """Console entry point."""
    cli(obj={})
