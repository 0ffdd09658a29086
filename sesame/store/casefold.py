"""The log's text search, as both stores match it: a needle (already casefolded) is found in
a field when it is in the field's casefold, as the Activity page matched it from the start.
The stores' own matching (SQLite's LIKE, Lua's string.lower) folds ASCII letters only; they
hand Python, through ``holds``, just the fields where that can differ from casefold."""

from __future__ import annotations

from functools import cache

# The characters beyond ASCII whose casefold holds ASCII ('ß' -> 'ss', the Kelvin sign
# -> 'k', 'ﬁ' -> 'fi', ...): the only ones through which an ASCII needle can be in the
# casefold of a field and not in its ASCII-lowered self: ß İ ŉ ſ ǰ ẖ ẗ ẘ ẙ ẚ ẞ K ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ
# ﬆ, by the Unicode data of Python 3.11 (tests/store/test_queries.py holds the list to it).
FOLDS = list(
    "\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"
)


def holds(field: str | None, needle: str) -> bool:
    """Whether ``needle`` (casefolded) is in ``field``'s casefold."""
    return field is not None and needle in field.casefold()


def needs_casefold(needle: str) -> bool:
    """Whether a field may hold ``needle`` (casefolded) by casefold where folding ASCII
    letters alone does not find it: only through a character beyond ASCII that casefold
    changes, so only if its casefold holds one of the needle's characters (no Chinese
    character does; of ASCII letters, only a f h i j k l n s t w y)."""
    return not _folded().isdisjoint(needle)


# The last character that casefold changes (ADLAM CAPITAL LETTER SHA), by the Unicode data of
# Python 3.11 (tests/store/test_queries.py holds it to it): what _folded reads up to.
LAST_FOLDED = 0x1E921


@cache
def _folded() -> frozenset[str]:
    """Every character that the casefold of a character beyond ASCII changes it into holds
    (about 40 ms, once per process, at its first text search)."""
    folded: set[str] = set()
    for char in map(chr, range(0x80, LAST_FOLDED + 1)):
        if (fold := char.casefold()) != char:
            folded.update(fold)
    return frozenset(folded)


# GLOBs of the fields where LIKE (ASCII letters folded, the rest as they are) may miss what
# casefold finds: WIDE, those with a character beyond ASCII (a field all ASCII casefolds to
# ASCII); of those, for an ASCII needle, the ones with a character of FOLDS (folds_glob).
# SQLite tries each character of a class at every place of the field, so WIDE goes first:
# the class alone made a search five times slower, measured.
WIDE_GLOB = "*[^\x01-\x7f]*"


def _class(chars: list[str]) -> str:
    """A GLOB class of ``chars`` (in order), runs of consecutive characters as ranges:
    fewer items for SQLite to try at every place."""
    runs: list[list[str]] = []
    for char in chars:
        if runs and ord(char) == ord(runs[-1][-1]) + 1:
            runs[-1].append(char)
        else:
            runs.append([char])
    return "".join(run[0] if len(run) < 3 else f"{run[0]}-{run[-1]}" for run in runs)


_FOLDS_GLOB = f"*[{_class(FOLDS)}]*"


def folds_glob(needle: str) -> str:
    return _FOLDS_GLOB if needle.isascii() else "*"
