"""quick_init: a frozen dataclass remade to be quick to make is still the same value."""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

import pytest

from sesame.models import DownloadEvent, Outcome
from sesame.ranges import plan, whole
from sesame.values import quick_init


def _value() -> type[Any]:
    """A new frozen, slotted dataclass with defaults, fields outside __init__ and a
    __post_init__ (each call makes another class, of the same fields)."""

    @dataclass(frozen=True, slots=True)
    class Value:
        name: str
        size: int
        note: str | None = None
        total: int = field(init=False, default=0)
        twice: int = field(init=False, repr=False, compare=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "twice", 2 * self.size)

    return Value


Plain = _value()
Quick = quick_init(_value())


def test_it_is_made_as_the_dataclass_would_make_it() -> None:
    for args, kwargs in [
        (("a", 1), {}),
        (("a",), {"size": 1, "note": "n"}),
        ((), {"name": "a", "size": 2}),
    ]:
        plain, quick = Plain(*args, **kwargs), Quick(*args, **kwargs)
        assert repr(quick) == repr(plain)
        assert dataclasses.astuple(quick) == dataclasses.astuple(plain)
        assert (quick.total, quick.twice) == (plain.total, plain.twice)
    assert Quick("a", 1) == Quick("a", 1) != Quick("a", 2)
    assert hash(Quick("a", 1)) == hash(Quick("a", 1))
    assert dataclasses.replace(Quick("a", 1), size=3) == Quick("a", 3)
    assert copy.deepcopy(Quick("a", 1, "n")) == Quick("a", 1, "n")
    assert typing.get_type_hints(Quick.__init__) == typing.get_type_hints(Plain.__init__)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Quick("a"),
        lambda: Quick("a", 1, "n", 4),
        lambda: Quick("a", 1, colour="red"),
        lambda: Quick("a", 1, total=3),
        lambda: Quick("a", name="b", size=1),
    ],
)
def test_wrong_arguments_are_refused_as_before(make: object) -> None:
    with pytest.raises(TypeError):
        make()  # type: ignore[operator]


def test_it_stays_frozen() -> None:
    quick = Quick("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.size = 2
    # Any other name is refused as the dataclass itself refuses it (how, varies by Python).
    for value in (Plain("a", 1), quick):
        with pytest.raises(Exception) as refused:
            value.colour = "red"
        assert refused.type in (TypeError, AttributeError)


def test_classes_it_cannot_make_are_refused() -> None:
    @dataclass(slots=True)
    class Open:
        name: str

    @dataclass(frozen=True)
    class Unslotted:
        name: str

    @dataclass(frozen=True, slots=True)
    class Listed:
        names: list[str] = field(default_factory=list)

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Keywords:
        name: str

    @dataclass(frozen=True, slots=True)
    class OwnInit:
        size: int

        def __init__(self, size: int) -> None:
            object.__setattr__(self, "size", abs(size))

    for cls in (Open, Unslotted, Listed, Keywords, OwnInit):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_the_downloads_own_values_keep_their_rules() -> None:
    """A log row still cuts a long user agent (its __post_init__), and a plan still
    counts its bytes, whether it is made afresh or is the one whole plan of its size."""
    event = DownloadEvent("id", 1.0, "1.2.3.4", "x" * 10_000, 200, 5, Outcome.COMPLETED)
    assert event.user_agent is not None and len(event.user_agent) < 10_000
    assert plan(100, "bytes=0-9,50-59").nbytes == 20
    assert whole(100).nbytes == 100 and whole(100) is whole(100)
