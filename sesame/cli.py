"""The ``sesame`` command: share files, list and revoke links, manage keyword rules and API
keys from a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from sesame import __version__, export, qr
from sesame.activity import LogFilter
from sesame.clitext import N_, Group, _, ngettext, sentence
from sesame.clitext import Option as _Option
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
from sesame.service import ALL_LINKS, LINKS_SHOWN, MAX_DOWNLOADS, Service
from sesame.settings import load_settings

LANDING_HELP = N_(
    "Browsers see a page with the file's name, size, SHA-256 and time left, and a download"
    " button, before the download."
)
JSON_OBJECT_HELP = N_("Print one JSON object and nothing else.")
JSON_LIST_HELP = N_("Print one JSON list and nothing else.")

STATUS_TEXTS = {
    LinkStatus.ACTIVE: N_("active"),
    LinkStatus.EXPIRED: N_("expired"),
    LinkStatus.REVOKED: N_("revoked"),
    LinkStatus.USED_UP: N_("used up"),
}

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
        click.echo(f"sesame: {sentence(exc)}", err=True)
        code = next((c for kind, c in EXIT_CODES.items() if isinstance(exc, kind)), 1)
        sys.exit(code)


def _print_version(ctx: click.Context, asked: bool) -> None:
    # click's version_option takes its message when the command is built, before anyone has
    # chosen a language; this one translates it when it is shown.
    if asked and not ctx.resilient_parsing:
        click.echo(_("%(prog)s, version %(version)s") % {"prog": "sesame", "version": __version__})
        ctx.exit()


def _service(ctx: click.Context) -> Service:
    factory: Callable[[], Service] = ctx.obj["factory"]
    if "service" not in ctx.obj:
        ctx.obj["service"] = factory()
    service: Service = ctx.obj["service"]
    return service


F = TypeVar("F", bound=Callable[..., Any])


def option(*names: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` whose help is shown in the reader's language."""
    return click.option(*names, cls=_Option, **attrs)


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=N_(
        "Sesame: share files from SESAME_FILES_DIR with signed links that expire.\n\n"
        "Settings come from SESAME_* environment variables and a .env file in the current"
        " folder; the language from SESAME_LANG (zh_CN or en), else from LANG."
    ),
)
@option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _param, value: _print_version(ctx, value),
    help=N_("Show the version and exit."),
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """The ``sesame`` command group."""
    ctx.ensure_object(dict)
    ctx.obj.setdefault("factory", lambda: Service.from_settings(load_settings()))


def _link_options(downloads_help: str, ttl_help: str) -> Callable[[F], F]:
    """The --ttl and --max-downloads options, with their help."""

    def decorate(command: F) -> F:
        command = option(
            "--max-downloads",
            type=click.IntRange(min=1, max=MAX_DOWNLOADS),
            default=None,
            help=downloads_help,
        )(command)
        return option("--ttl", "lifetime", metavar="LIFETIME", default=None, help=ttl_help)(command)

    return decorate


@cli.command(
    help=N_("Make a link to FILE (a name inside SESAME_FILES_DIR) and print it with a QR code.")
)
@click.argument("file")
@_link_options(
    N_("How many complete downloads the link allows. [default: no limit]"),
    N_("How long the link works, like 90s, 10m, 2h, 7d. [default: SESAME_DEFAULT_LIFETIME]"),
)
@option("--recipient", default=None, help=N_("Who the link is for (shown in the log)."))
@option("--note", default=None, help=N_("A note for yourself."))
@option("--landing", is_flag=True, help=LANDING_HELP)
@option(
    "--rate",
    default=None,
    help=N_(
        "Cap each download's speed, like 500KiB (a second); 0 for none"
        " (default: SESAME_DEFAULT_LINK_RATE)."
    ),
)
@option("--json", "as_json", is_flag=True, help=JSON_OBJECT_HELP)
@option("--no-qr", is_flag=True, help=N_("Do not draw the QR code."))
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
    """Make a link and print it."""
    with _errors_to_exit_codes():
        shared = _service(ctx).share(file, lifetime, max_downloads, recipient, note, landing, rate)
    if as_json:
        _print_json(shared.as_dict())
        return
    expires = utc(shared.link.expires_at)
    click.echo(shared.url)
    summary = _("{file} · expires {expires} UTC (in {lifetime})").format(
        file=shared.link.file,
        expires=f"{expires:%Y-%m-%d %H:%M:%S}",
        lifetime=format_lifetime(shared.link.lifetime),
    )
    if max_downloads:
        summary += " · " + ngettext("{count} download", "{count} downloads", max_downloads).format(
            count=max_downloads
        )
    click.echo(summary)
    if not no_qr:
        click.echo(qr.text(shared.url), nl=False)


@cli.command(help=N_("List links, newest first (only the active ones without --all)."))
@option(
    "--all", "include_all", is_flag=True, help=N_("Include expired, revoked and used-up links.")
)
@option(
    "--limit",
    type=click.IntRange(min=0, max=ALL_LINKS),
    default=LINKS_SHOWN,
    show_default=True,
    help=N_("List at most the newest N links; 0 lists them all."),
    metavar="N",
)
@option("--json", "as_json", is_flag=True, help=JSON_LIST_HELP)
@click.pass_context
def links(ctx: click.Context, include_all: bool, limit: int, as_json: bool) -> None:
    """List links."""
    with _errors_to_exit_codes():
        service = _service(ctx)
        statuses = () if include_all else (LinkStatus.ACTIVE,)
        records = service.link_records(statuses, limit or ALL_LINKS)
        _say_how_many_more(service, statuses, len(records), limit)
        if as_json:
            # The list json.dumps(indent=2) would print, written a thousand links at a
            # time: their URLs minted as they are printed, not 100,000 dicts held at once.
            for number, chunk in enumerate(_thousands(records)):
                items = (
                    service.shared(link).as_dict() | {"status": _status(service, link)}
                    for link in chunk
                )
                text = ",\n".join(_json_item(item) for item in items)
                click.echo(("[\n" if number == 0 else ",\n") + text, nl=False)
            click.echo("\n]" if records else "[]")
            return
        # The lines show no URL: no token to mint for each of (perhaps) 100,000 links.
    if not records:
        click.echo(_("No links.") if include_all else _("No active links (see --all)."))
        return
    line = _link_line(service.clock())
    for chunk in _thousands(records):  # a write per thousand lines, not per line
        click.echo("\n".join(map(line, chunk)))


@cli.command(help=N_("Revoke the link ID; the gateway refuses it from the next request on."))
@click.argument("link_id", metavar="ID")
@click.pass_context
def revoke(ctx: click.Context, link_id: str) -> None:
    """Revoke a link."""
    with _errors_to_exit_codes():
        revoked = _service(ctx).revoke(link_id)
    click.echo(_("Revoked {id} ({file}).").format(id=revoked.id, file=revoked.file))


@cli.command(help=N_("List the files you can share."))
@option("--json", "as_json", is_flag=True, help=JSON_LIST_HELP)
@click.pass_context
def files(ctx: click.Context, as_json: bool) -> None:
    """List the files."""
    with _errors_to_exit_codes():
        infos = _service(ctx).files()
    if as_json:
        _print_json([info.as_dict() for info in infos])
        return
    if not infos:
        click.echo(_("No files yet: put some in SESAME_FILES_DIR."))
    for info in infos:
        click.echo(f"{info.name}\t{human_size(info.size)}\t{info.sha256[:12]}")


@cli.group(help=N_("Keyword rules: what the WeChat Official Account answers to a keyword."))
def rule() -> None:
    """Keyword rules."""


@rule.command(
    "add", help=N_("Answer KEYWORD with a fresh link to FILE (a name inside SESAME_FILES_DIR).")
)
@click.argument("keyword")
@click.argument("file")
@_link_options(
    N_("How many complete downloads each link allows. [default: no limit]"),
    N_("How long each link works, like 90s, 10m, 2h, 7d. [default: SESAME_DEFAULT_LIFETIME]"),
)
@option(
    "--cooldown",
    metavar="LIFETIME",
    default=None,
    help=N_(
        "A sender asking again within this time gets their last link back; 0 for never."
        " [default: the link's lifetime]"
    ),
)
@option(
    "--template",
    default=None,
    help=N_(
        "The reply, with {url}, {file}, {size}, {sha256}, {expires}, {minutes}."
        " [default: a Chinese and English reply like the one in the README]"
    ),
)
@option("--landing", is_flag=True, help=LANDING_HELP)
@option("--replace", is_flag=True, help=N_("Replace the keyword's rule if it has one."))
@option("--json", "as_json", is_flag=True, help=JSON_OBJECT_HELP)
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
    """Add a keyword rule."""
    with _errors_to_exit_codes():
        added = _service(ctx).add_rule(
            keyword, file, lifetime, max_downloads, cooldown, template, landing, replace
        )
    if as_json:
        _print_json(added.as_dict())
        return
    click.echo(
        _("Keyword {keyword!r} now answers with {rule}.").format(
            keyword=added.keyword, rule=_rule_line(added)
        )
    )


@rule.command("list", help=N_("List the keyword rules."))
@option("--json", "as_json", is_flag=True, help=JSON_LIST_HELP)
@click.pass_context
def rule_list(ctx: click.Context, as_json: bool) -> None:
    """List the rules."""
    with _errors_to_exit_codes():
        found = _service(ctx).rules()
    if as_json:
        _print_json([item.as_dict() for item in found])
        return
    if not found:
        click.echo(_("No keyword rules yet: see sesame rule add --help."))
    for item in found:
        click.echo(f"{item.keyword}\t{_rule_line(item)}")


@rule.command("remove", help=N_("Stop answering KEYWORD; links already sent keep working."))
@click.argument("keyword")
@click.pass_context
def rule_remove(ctx: click.Context, keyword: str) -> None:
    """Remove a rule."""
    with _errors_to_exit_codes():
        removed = _service(ctx).remove_rule(keyword)
    click.echo(_("Removed the rule for {keyword!r}.").format(keyword=removed.keyword))


@cli.group(help=N_("API keys for bots and scripts that ask for links over HTTP."))
def apikey() -> None:
    """API keys."""


@apikey.command(
    "create",
    help=N_("Make an API key called NAME. The key is shown this once; only its hash is kept."),
)
@click.argument("name")
@option("--json", "as_json", is_flag=True, help=JSON_OBJECT_HELP)
@click.pass_context
def apikey_create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Make an API key."""
    with _errors_to_exit_codes():
        created = _service(ctx).create_api_key(name)
    if as_json:
        _print_json(created.as_dict())
        return
    click.echo(created.secret)
    click.echo(
        _(
            "API key {id} ({name}). Copy it now: it is shown only this once."
            " Use it as: Authorization: Bearer <key>"
        ).format(id=created.api_key.id, name=created.api_key.name),
        err=True,
    )


@apikey.command("list", help=N_("List API keys (their first letters only), newest first."))
@option("--json", "as_json", is_flag=True, help=JSON_LIST_HELP)
@click.pass_context
def apikey_list(ctx: click.Context, as_json: bool) -> None:
    """List API keys."""
    with _errors_to_exit_codes():
        found = _service(ctx).api_keys()
    if as_json:
        _print_json([item.as_dict() for item in found])
        return
    if not found:
        click.echo(_("No API keys yet: see sesame apikey create --help."))
    for item in found:
        click.echo(_key_line(item))


@apikey.command("revoke", help=N_("Revoke the API key ID; it is refused from the next request on."))
@click.argument("key_id", metavar="ID")
@click.pass_context
def apikey_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke an API key."""
    with _errors_to_exit_codes():
        revoked = _service(ctx).revoke_api_key(key_id)
    click.echo(_("Revoked API key {id} ({name}).").format(id=revoked.id, name=revoked.name))


@cli.command(
    help=N_("Write a consistent copy of the store to PATH (a new file), while gateways run.")
)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, path: Path) -> None:
    """Back the store up."""
    with _errors_to_exit_codes():
        _service(ctx).backup(path)
    click.echo(_("Backed up to {path}.").format(path=path))


@cli.group(help=N_("The download log."))
def log() -> None:
    """The download log."""


@log.command(
    "export",
    help=N_("Print the log, oldest first, as CSV (with a header) or JSON Lines, as it is read."),
)
@option("--since", help=N_("Rows from then on: a time ago (7d, 12h) or a date (2026-01-31)."))
@option("--format", "fmt", type=click.Choice(export.FORMATS), default="csv")
@click.pass_context
def log_export(ctx: click.Context, since: str | None, fmt: str) -> None:
    """Export the log."""
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
    parts = [_("{lifetime} links").format(lifetime=format_lifetime(item.lifetime))]
    if item.max_downloads:
        parts.append(
            ngettext("{count} download", "{count} downloads", item.max_downloads).format(
                count=item.max_downloads
            )
        )
    if item.landing:
        parts.append(_("landing page"))
    cooldown = format_lifetime(item.cooldown) if item.cooldown else _("none")
    parts.append(_("cool-down {cooldown}").format(cooldown=cooldown))
    return f"{item.file}: " + _(", ").join(parts)


def _key_line(item: ApiKey) -> str:
    state = (
        _("revoked {date}").format(date=f"{utc(item.revoked_at):%Y-%m-%d}")
        if item.revoked_at
        else _("active")
    )
    used = (
        _("last used {time}").format(time=f"{utc(item.last_used_at):%Y-%m-%d %H:%M}")
        if item.last_used_at
        else ""
    )
    fields = [item.id, f"{item.prefix}…", item.name, state, used]
    return "\t".join(fields).rstrip()


def _say_how_many_more(
    service: Service, statuses: Collection[LinkStatus], shown: int, limit: int
) -> None:
    """On stderr (the listing stays whole JSON), if ``limit`` left links out: how many."""
    if not limit or shown < limit:
        return
    counts = service.link_counts()
    total = sum(n for status, n in counts.items() if not statuses or status in statuses)
    if total > shown:
        note = _("The newest {shown} of {total} links; --limit 0 lists them all.")
        click.echo(note.format(shown=f"{shown:,}", total=f"{total:,}"), err=True)


def _status(service: Service, link: Link) -> str:
    return link.status(service.clock()).value


def _link_line(now: float) -> Callable[[Link], str]:
    """What writes a link's line at ``now`` (the texts translated once, not per line)."""
    expires, left_text = _("expires {time} UTC"), _("({lifetime} left)")
    statuses = {status: _(text) for status, text in STATUS_TEXTS.items()}

    def line(link: Link) -> str:
        expiry = expires.format(time=f"{utc(link.expires_at):%Y-%m-%d %H:%M}")
        if (left := link.expires_at - int(now)) > 0:
            expiry += " " + left_text.format(lifetime=format_lifetime(left))
        limit = f"{link.downloads}/{link.max_downloads or '∞'}"
        fields = [link.id, statuses[link.status(now)], link.file, limit, expiry]
        return "\t".join([*fields, link.recipient or ""]).rstrip()

    return line


def _thousands(records: list[Link]) -> Iterator[list[Link]]:
    """``records`` a thousand at a time: what a listing writes at once."""
    for start in range(0, len(records), 1000):
        yield records[start : start + 1000]


def _json_item(item: dict[str, object]) -> str:
    """A flat dict as json.dumps(indent=2) writes it inside a list, by json's C encoder:
    ``indent`` makes json use its pure-Python one, which took most of ``links --json``'s time.
    The item separator carries the indentation (a flat dict has no other separator)."""
    flat = json.dumps(item, ensure_ascii=False, separators=(",\n    ", ": "))
    return "  {\n    " + flat[1:-1] + "\n  }"


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def main() -> None:
    """Console entry point."""
    cli(obj={})
