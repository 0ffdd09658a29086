"""Values made for every download, quickly: frozen, slotted dataclasses whose ``__init__``
sets each field through its slot.

A frozen dataclass's generated ``__init__`` sets each field with ``object.__setattr__``
(its own ``__setattr__`` refuses): a lookup and a call for every field, about three times
what a plain class pays. A download makes about a dozen such values (its visitor, its log
row, what it asks of the store, its plan, its open file...), and that came to a seventh
of its time in the store's thread (measured, bench/RESULTS.md). ``quick_init`` remakes
that ``__init__`` to set the fields through their slots' own descriptors, which is what
assignment does in a plain slotted class: the same parameters, defaults and
``__post_init__``, and the class stays as frozen as it was.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """``cls`` (a ``@dataclass(frozen=True, slots=True)``, applied before this) with an
    ``__init__`` that sets each field through its slot. Raises TypeError for any other
    class, and for a field this does not make the way dataclasses do (a default factory,
    a keyword-only field, an InitVar)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    made = cls.__init__
    # dataclasses writes its __init__ as source and runs it ("<string>"); one of the class's
    # own is not for this to replace.
    if not params.init or getattr(made, "__code__", None) is None:
        raise TypeError(f"{cls.__name__}'s __init__ is not the dataclass's")
    if made.__code__.co_filename != "<string>":
        raise TypeError(f"{cls.__name__}'s __init__ is not the dataclass's")
    names: dict[str, Any] = {}  # what the generated code refers to, by its name there
    arguments: list[str] = []
    lines: list[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.default_factory is not dataclasses.MISSING or field.kw_only is True:
            raise TypeError(f"{cls.__name__}.{field.name}: not made here")
        slot = cls.__dict__.get(field.name)
        if slot is None or not inspect.ismemberdescriptor(slot):
            raise TypeError(f"{cls.__name__}.{field.name} is not a slot of its own")
        names[f"_set_{field.name}"] = slot.__set__
        if field.default is not dataclasses.MISSING:
            names[f"_default_{field.name}"] = field.default
        if field.init:
            default = "" if field.default is dataclasses.MISSING else f"=_default_{field.name}"
            arguments.append(field.name + default)
            lines.append(f"    _set_{field.name}(self, {field.name})")
        elif field.default is not dataclasses.MISSING:
            lines.append(f"    _set_{field.name}(self, _default_{field.name})")
    taken = inspect.signature(made).parameters
    if [p for p in taken if p != "self"] != [a.partition("=")[0] for a in arguments]:
        raise TypeError(f"{cls.__name__}'s __init__ takes what its fields do not say")
    if hasattr(cls, "__post_init__"):
        lines.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(arguments)}):\n" + "\n".join(lines or ["    pass"])
    exec(source, names)  # from the class's own field names, as dataclasses makes its own
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(made.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
