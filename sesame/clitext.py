"""The ``sesame`` command's words in its reader's language (``SESAME_LANG``, then the
terminal's ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``): our messages, click's own
("Usage:", "Options"), the help of every command and option, and the sentences of errors.

Everything is translated when it is shown, never when it is defined: click builds the commands
at import, before anyone has chosen a language, and error classes keep their English ``str()``
(the gateway's JSON and the log use it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import click
from dotenv import dotenv_values

from sesame import i18n
from sesame.errors import (
    ApiKeyNotFound,
    BackupError,
    ConfigError,
    FileMissing,
    InvalidInput,
    LinkNotFound,
    RuleExists,
    RuleNotFound,
    SchemaTooNew,
    SesameError,
    StoreUnavailable,
)


def N_(message: str) -> str:
    """Marks ``message`` for ``make messages``; it is translated where it is shown."""
    return message


# The language of the command that is running, read once as it starts: a listing of 100,000
# links asks for two messages a line, and reading the environment and ``.env`` each time was
# most of ``sesame links --all``'s time (13 s of 15, measured).
_chosen: ContextVar[str | None] = ContextVar("sesame_cli_language", default=None)


def language() -> str:
    """The reader's language: SESAME_LANG from the environment or from ``.env`` (as settings
    are read), else the terminal's locale variables; while a command runs, as it started."""
    chosen = _chosen.get()
    return _read_language() if chosen is None else chosen


def _read_language() -> str:
    environ = dict(os.environ)
    if not environ.get("SESAME_LANG") and Path(".env").is_file():
        environ["SESAME_LANG"] = dotenv_values(".env").get("SESAME_LANG") or ""
    return i18n.from_environment(environ)


def _catalog() -> Any:
    return i18n.translations(language(), "sesame")


def _(message: str) -> str:
    """``message`` in the reader's language."""
    translated: str = _catalog().gettext(message)
    return translated


def ngettext(singular: str, plural: str, n: int) -> str:
    """``singular`` or ``plural`` as ``n`` asks, in the reader's language."""
    translated: str = _catalog().ngettext(singular, plural, n)
    return translated


@contextmanager
def _translated_help(thing: Any) -> Iterator[None]:
    """``thing.help`` in the reader's language while click formats it."""
    source = thing.help
    thing.help = _(source) if source else source
    try:
        yield
    finally:
        thing.help = source


class _TranslatedHelp(click.Command):
    """A command whose ``help`` is a message id, shown translated."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated_help(self):
            super().format_help_text(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        with _translated_help(self):
            return super().get_short_help_str(limit)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        option = super().get_help_option(ctx)
        if option is not None:
            # click builds this option once and keeps the help it had in that moment's language.
            option.help = _("Show this message and exit.")
        return option


class Option(click.Option):
    """An option whose ``help`` is a message id, shown translated."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        with _translated_help(self):
            return super().get_help_record(ctx)


class Command(_TranslatedHelp):
    """A command whose ``help`` is a message id, shown translated."""


class Group(_TranslatedHelp, click.Group):
    """A group whose ``help`` is translated, as are its commands' and click's own words."""

    command_class = Command
    group_class = type  # subgroups are of this class too

    def main(self, *args: Any, **kwargs: Any) -> Any:
        chosen = _chosen.set(_read_language())
        try:
            follow_click()
            return super().main(*args, **kwargs)
        finally:
            _chosen.reset(chosen)


# click's own words that a `sesame` user meets, in our catalog (click's texts go through the
# stdlib's global gettext domain, which knows nothing of SESAME_LANG or of our catalogs).
CLICK_TEXTS = (
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Arguments"),
    N_("Show this message and exit."),
    N_("Show the version and exit."),
    N_("%(prog)s, version %(version)s"),
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("No such command {name!r}."),
    N_("No such option {name!r}."),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing command."),
    N_("Missing {param_type}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("Option {name!r} does not take a value."),
    N_("default: {default}"),
    N_("required"),
    N_("Aborted!"),
    N_("{name} {filename!r} is a directory."),
)


def click_plurals(n: int) -> tuple[str, ...]:
    """click's words that depend on a number, as ``n`` asks (marks them for the catalog)."""
    return (
        ngettext(
            "Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})", n
        ),
        ngettext(
            "Option {name!r} requires an argument.",
            "Option {name!r} requires {nargs} arguments.",
            n,
        ),
        ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", n),
        ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)", n),
    )


_CLICK_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types")


def follow_click() -> None:
    """Make click's own words follow the reader's language, from our catalog."""
    for name in _CLICK_MODULES:
        module = sys.modules.get(f"click.{name}")
        if module is None:
            continue
        if hasattr(module, "_"):
            module._ = _  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext  # type: ignore[attr-defined]


# The reasons FileMissing gives (sesame/catalog.py), for the Chinese sentence.
_REASONS = {
    "no such file": N_("no such file"),
    "outside the files folder": N_("outside the files folder"),
    "a symbolic link": N_("a symbolic link"),
    "not a regular file": N_("not a regular file"),
    "not a valid file name": N_("not a valid file name"),
}


def sentence(exc: SesameError) -> str:
    """What went wrong, as one sentence in the reader's language. Errors that carry their data
    are written anew from it; the others keep their English detail behind a translated lead."""
    if isinstance(exc, FileMissing):
        reason = _(_REASONS[exc.reason]) if exc.reason in _REASONS else exc.reason
        return _("{name!r} is not a file you can share ({reason}).").format(
            name=exc.name, reason=reason
        )
    if isinstance(exc, LinkNotFound):
        return _("There is no link with id {id!r}.").format(id=exc.link_id)
    if isinstance(exc, RuleNotFound):
        return _("There is no rule for the keyword {keyword!r}.").format(keyword=exc.keyword)
    if isinstance(exc, RuleExists):
        return _(
            "A rule for the keyword {keyword!r} exists already; remove it first or replace it."
        ).format(keyword=exc.keyword)
    if isinstance(exc, ApiKeyNotFound):
        return _("There is no API key with id {id!r}.").format(id=exc.key_id)
    if isinstance(exc, StoreUnavailable):
        return _("The link store is not available right now ({reason}); try again later.").format(
            reason=exc.reason
        )
    if isinstance(exc, SchemaTooNew):
        return _(
            "The store {where} was written by a newer version of Sesame (schema {version}; this"
            " one knows up to {known}): upgrade Sesame, or restore a backup made by this version."
        ).format(where=exc.where, version=exc.version, known=exc.known)
    return _lead(exc) + str(exc)


def _lead(exc: SesameError) -> str:
    """In English nothing; in Chinese what kind of problem the English detail describes."""
    for kind, lead in (
        (InvalidInput, N_("Unusable value: ")),
        (ConfigError, N_("Unusable settings: ")),
        (BackupError, N_("No backup: ")),
        (SesameError, N_("Something went wrong: ")),
    ):
        if isinstance(exc, kind):
            return "" if language() == i18n.DEFAULT else _(lead)
    return ""
