"""One place where a failing store becomes ``StoreUnavailable``: a locked, read-only, full or
damaged SQLite file, a Redis that refuses, times out or is gone.

``guarded(cls, failures)`` is ``cls`` with each public method (and the constructor) turning
those low-level errors into ``StoreUnavailable``, raised ``from`` the original, so that the
gateway, the CLI and the dashboard each map one error instead of every driver's. A method
that answers several requests at once (an ``Each``) has each request's error mapped alike.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from sesame.errors import StoreUnavailable
from sesame.store.base import Each

T = TypeVar("T")
Failures = tuple[type[BaseException], ...]


def guarded(cls: type[T], failures: Failures, bugs: Failures = ()) -> type[T]:
    """A subclass of ``cls`` whose public methods raise StoreUnavailable for ``failures``.
    ``bugs`` (subclasses of a failure that mean a mistake in Sesame, like a broken
    constraint) pass unchanged."""
    namespace: dict[str, Any] = {"__doc__": cls.__doc__, "__module__": cls.__module__}
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # the store's own methods and its mixins'
        members.update(vars(klass))
    for name, member in members.items():
        if callable(member) and (not name.startswith("_") or name == "__init__"):
            namespace[name] = _guard(member, name, failures, bugs)
    return type(cls.__name__, (cls,), namespace)


def _guard(
    method: Callable[..., Any], name: str, failures: Failures, bugs: Failures
) -> Callable[..., Any]:
    operation = "open" if name == "__init__" else name

    def unavailable(exc: BaseException) -> BaseException:
        """What a guarded method raises in the place of ``exc``."""
        if isinstance(exc, StoreUnavailable) or not isinstance(exc, failures):
            return exc
        if isinstance(exc, bugs):
            return exc
        error = StoreUnavailable(operation, _reason(exc))
        error.__cause__ = exc
        return error

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = method(self, *args, **kwargs)
        except Exception as exc:
            error = unavailable(exc)
            if isinstance(error, StoreUnavailable):
                _reconnect(self)
            if error is exc:
                raise
            raise error from exc
        if isinstance(answer, Each):  # several requests' answers: each error as if raised
            errors = [unavailable(a) if isinstance(a, BaseException) else a for a in answer]
            if any(isinstance(a, StoreUnavailable) for a in errors):
                _reconnect(self)
            return Each(errors)
        return answer

    return call


def _reconnect(store: Any) -> None:
    """Let a store that offers it (``_reconnect``) drop what the failure may have spoiled,
    so that it works again by itself once its file or server is back."""
    reconnect = getattr(store, "_reconnect", None)
    if reconnect is not None:
        with contextlib.suppress(Exception):
            reconnect()


def _reason(exc: BaseException) -> str:
    """The driver's own words, cut short: they name the cause (locked, read-only, refused)."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
