"""The log's text search, as both stores match it: a needle (already casefolded) is found in
a field when it is in the field's casefold, as the Activity page matched it from the start.
The stores' own matching (SQLite's LIKE, Lua's string.lower) folds ASCII letters only; they
hand Python, through ``holds``, just the fields where that can differ from casefold."""

from __future__ import annotations

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


# GLOBs of the fields where LIKE (ASCII letters folded, the rest as they are) may miss what
# casefold finds: WIDE, those with a character beyond ASCII (a field all ASCII casefolds to
# ASCII); of those, for an ASCII needle, the ones with a character of FOLDS (folds_glob).
# SQLite tries each character of a class at every place of the field, so WIDE goes first:
# the class alone made a search five times slower, measured.
WIDE_GLOB = "*[^\x01-\x7f]*"
_FOLDS_GLOB = "*[\u00df\u0130\u0149\u017f\u01f0\u1e96-\u1e9e\u212a\ufb00-\ufb06]*"


def folds_glob(needle: str) -> str:
    return _FOLDS_GLOB if needle.isascii() else "*"
