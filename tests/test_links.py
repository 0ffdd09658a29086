"""Link tokens: minted with their own lifetime, verified with the secret alone."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import time_machine
from itsdangerous import URLSafeTimedSerializer

from sesame.errors import LinkExpired, LinkInvalid
from sesame.links import CLOCK_SKEW, SALT, Claims, LinkSigner
from sesame.models import utc
from tests.support import KEY, NOW, FakeClock

OLD_KEY = b"old-test-key-abcdefghijklmnopqrstuvwxyz012345678"
NEW_KEY = b"new-test-key-abcdefghijklmnopqrstuvwxyz012345678"
WEEK = 7 * 86400
# Its signature holds a "-", so the standard-alphabet spelling below is a real change.
LINK_ID = "link0000001"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def signer(*keys: bytes, max_lifetime: int = WEEK, now: float = NOW) -> LinkSigner:
    return LinkSigner(list(keys) or [KEY.encode()], max_lifetime, clock=FakeClock(now))


def token(lifetime: int = 600, signed_at: int = NOW, link_id: str = LINK_ID) -> str:
    return signer().mint(link_id, lifetime, signed_at)


def foreign(payload: object, salt: str = SALT, key: bytes = KEY.encode()) -> str:
    """A token made with itsdangerous directly, at NOW, the way links.py makes them."""
    serializer = URLSafeTimedSerializer(
        key, salt=salt, signer_kwargs={"digest_method": hashlib.sha256}
    )
    with time_machine.travel(NOW, tick=False):
        return serializer.dumps(payload)


def test_round_trip() -> None:
    """A minted token verifies to its link id, signing time and lifetime."""
    assert signer().verify(token()) == Claims(LINK_ID, NOW, 600)
    assert Claims(LINK_ID, NOW, 600).expires_at == NOW + 600


def test_same_arguments_same_token() -> None:
    """Minting is deterministic, so a link's URL can be shown again from its record."""
    assert token() == token()
    assert token() != token(lifetime=601)
    assert token() != token(signed_at=NOW + 1)
    assert token() != token(link_id="link0000002")


def test_default_token_is_short() -> None:
    """A token for an 11-character id and the longest default lifetime fits in 100 chars."""
    assert len(token(lifetime=WEEK)) <= 100


def test_token_is_url_safe() -> None:
    """A token needs no escaping in a URL path."""
    assert set(token()) <= set(B64 + ".")


def test_valid_through_its_last_second() -> None:
    """A token is valid at exactly signed_at + lifetime."""
    assert signer(now=NOW + 600).verify(token()).link_id == LINK_ID


def test_expired_one_second_later() -> None:
    """One second after its lifetime, LinkExpired carries the link id and the expiry time."""
    with pytest.raises(LinkExpired) as info:
        signer(now=NOW + 601).verify(token())
    assert info.value.link_id == LINK_ID
    assert info.value.expired_at == utc(NOW + 600)
    assert info.value.code == "expired"


def test_each_token_has_its_own_lifetime() -> None:
    """Two tokens from the same signer expire after their own lifetimes."""
    later = signer(now=NOW + 3600)
    assert later.verify(token(lifetime=3600)).lifetime == 3600
    with pytest.raises(LinkExpired):
        later.verify(token(lifetime=3599))


def test_clock_moves_under_one_signer() -> None:
    """The injected clock is read at every verify, not once."""
    clock = FakeClock(NOW)
    link_signer = LinkSigner([KEY.encode()], WEEK, clock=clock)
    minted = link_signer.mint(LINK_ID, 60, NOW)
    link_signer.verify(minted)
    clock.advance(61)
    with pytest.raises(LinkExpired):
        link_signer.verify(minted)


@pytest.mark.parametrize("ahead", [1, 20, CLOCK_SKEW])
def test_small_clock_skew_accepted(ahead: int) -> None:
    """A token signed up to 30 s in the future (the minting clock runs ahead) verifies."""
    assert signer().verify(token(signed_at=NOW + ahead)).signed_at == NOW + ahead


@pytest.mark.parametrize("ahead", [CLOCK_SKEW + 1, 60, 86400])
def test_large_clock_skew_refused(ahead: int) -> None:
    """A token signed further in the future is not a link Sesame made: LinkInvalid."""
    with pytest.raises(LinkInvalid):
        signer().verify(token(signed_at=NOW + ahead))


def test_max_lifetime_caps_longer_token() -> None:
    """A token minted for longer than today's max_lifetime expires at the cap."""
    minted = signer(max_lifetime=30 * 86400).mint(LINK_ID, 30 * 86400, NOW)
    capped = signer(max_lifetime=3600, now=NOW + 3600)
    assert capped.verify(minted).lifetime == 3600
    with pytest.raises(LinkExpired) as info:
        signer(max_lifetime=3600, now=NOW + 3601).verify(minted)
    assert info.value.expired_at == utc(NOW + 3600)


def test_read_ignores_expiry() -> None:
    """read() gives the claims of a well-signed token even after it expired."""
    assert signer(now=NOW + 10**6).read(token()) == Claims(LINK_ID, NOW, 600)


def test_no_keys_refused() -> None:
    """A signer needs at least one key."""
    with pytest.raises(ValueError):
        LinkSigner([], WEEK)


def test_rotation_old_key_still_verifies() -> None:
    """After a new key is appended, tokens signed with the old one still verify."""
    old_token = signer(OLD_KEY).mint(LINK_ID, 600, NOW)
    assert signer(OLD_KEY, NEW_KEY).verify(old_token).link_id == LINK_ID


def test_rotation_new_tokens_signed_by_last_key() -> None:
    """The last key signs: the new key alone verifies new tokens, the old key alone does not."""
    new_token = signer(OLD_KEY, NEW_KEY).mint(LINK_ID, 600, NOW)
    assert new_token == signer(NEW_KEY).mint(LINK_ID, 600, NOW)
    assert signer(NEW_KEY).verify(new_token).link_id == LINK_ID
    with pytest.raises(LinkInvalid):
        signer(OLD_KEY).verify(new_token)


def test_rotation_dropped_key_invalid() -> None:
    """Once the old key is dropped from the list, its tokens are invalid."""
    old_token = signer(OLD_KEY).mint(LINK_ID, 600, NOW)
    with pytest.raises(LinkInvalid):
        signer(NEW_KEY).verify(old_token)


def _parts(value: str) -> list[str]:
    return value.split(".")


def _join(parts: list[str]) -> str:
    return ".".join(parts)


def flip(part: int, index: int) -> Callable[[str], str]:
    """Replace one character of one part with another character of the alphabet."""

    def transform(value: str) -> str:
        parts = _parts(value)
        chars = list(parts[part])
        chars[index] = "A" if chars[index] != "A" else "B"
        parts[part] = "".join(chars)
        return _join(parts)

    return transform


def same_bits_last_char(value: str) -> str:
    """Change the last signature character only in the bits base64 decoding throws away."""
    head, _, sig = value.rpartition(".")
    return f"{head}.{sig[:-1]}{B64[B64.index(sig[-1]) ^ 1]}"


def standard_alphabet(value: str) -> str:
    """Spell the signature with base64's standard alphabet (+ and / for - and _)."""
    head, _, sig = value.rpartition(".")
    return f"{head}.{sig.replace('-', '+').replace('_', '/')}"


def splice_payload(value: str) -> str:
    """Another link's payload under this token's timestamp and signature."""
    return _join([_parts(token(link_id="link0000002"))[0], *_parts(value)[1:]])


def longer_lifetime(value: str) -> str:
    """The payload re-encoded with a longer lifetime, keeping the signature."""
    payload = _parts(foreign([LINK_ID, WEEK]))[0]
    return _join([payload, *_parts(value)[1:]])


def insert(index: int, text: str) -> Callable[[str], str]:
    return lambda value: value[:index] + text + value[index:]


TAMPERS: dict[str, Callable[[str], str]] = {
    "flip payload first char": flip(0, 0),
    "flip payload middle char": flip(0, 10),
    "flip payload last char": flip(0, -1),
    "flip timestamp first char": flip(1, 0),
    "flip timestamp last char": flip(1, -1),
    "flip signature first char": flip(2, 0),
    "flip signature middle char": flip(2, 20),
    "flip signature last char": flip(2, -1),
    "signature last char, spare bits only": same_bits_last_char,
    "signature in standard base64": standard_alphabet,
    "uppercase everything": str.upper,
    "swap case of signature": lambda v: _join([*_parts(v)[:2], _parts(v)[2].swapcase()]),
    "truncate by one": lambda v: v[:-1],
    "truncate by four (the seed's test)": lambda v: v[:-4],
    "truncate to half": lambda v: v[: len(v) // 2],
    "drop signature": lambda v: _join(_parts(v)[:2]),
    "drop timestamp": lambda v: _join([_parts(v)[0], _parts(v)[2]]),
    "payload only": lambda v: _parts(v)[0],
    "append a letter": lambda v: v + "A",
    "append padding": lambda v: v + "==",
    "append junk base64 ignores": lambda v: v + "!!",
    "append whitespace": lambda v: v + "  ",
    "append newlines": lambda v: v + "\n\n",
    "prepend a letter": lambda v: "A" + v,
    "junk inside signature": lambda v: v[:-10] + "!!!!" + v[-10:],
    "swap payload and timestamp": lambda v: _join([_parts(v)[1], _parts(v)[0], _parts(v)[2]]),
    "reverse parts": lambda v: _join(_parts(v)[::-1]),
    "reverse string": lambda v: v[::-1],
    "extra dot inside": lambda v: v.replace(".", "..", 1),
    "trailing dot": lambda v: v + ".",
    "leading dot (compressed marker)": lambda v: "." + v,
    "extra part": lambda v: v + ".AAAA",
    "only dots": lambda v: "..",
    "other link's payload": splice_payload,
    "longer lifetime in payload": longer_lifetime,
    "other salt": lambda v: foreign([LINK_ID, 600], salt="itsdangerous"),
    "other key": lambda v: signer(OLD_KEY).mint(LINK_ID, 600, NOW),
    "sha1 like the seed": lambda v: URLSafeTimedSerializer(KEY, salt=SALT).dumps([LINK_ID, 600]),
    "empty": lambda v: "",
    "space": lambda v: " ",
    "non-ascii letter": lambda v: "é" + v[1:],
    "full-width dot": lambda v: v.replace(".", "\uff0e", 1),
    "NUL byte": insert(5, "\x00"),
    "percent-encoded dot": lambda v: v.replace(".", "%2E", 1),
    "huge": lambda v: v * 200,
    "huge junk": lambda v: "A" * 100_000,
}


@pytest.mark.parametrize("tamper", list(TAMPERS.values()), ids=list(TAMPERS))
def test_tampered_token_invalid(tamper: Callable[[str], str]) -> None:
    """Every change to a good token makes it LinkInvalid (never expired, never accepted)."""
    original = token()
    tampered = tamper(original)
    assert tampered != original
    checker = signer()
    checker.verify(original)  # a good token remembered first lets no variant of it through
    with pytest.raises(LinkInvalid):
        checker.verify(tampered)


def test_a_remembered_token_still_expires() -> None:
    """A token checked once is remembered, but its lifetime is measured on every use."""
    clock = FakeClock(NOW)
    checker = LinkSigner([KEY.encode()], WEEK, clock=clock)
    good = token(lifetime=600)
    assert checker.verify(good).link_id == LINK_ID
    clock.advance(601)
    with pytest.raises(LinkExpired):
        checker.verify(good)


@pytest.mark.parametrize(
    "payload",
    [
        {"to_user": "someone"},
        [LINK_ID],
        [LINK_ID, 600, "extra"],
        [LINK_ID, 0],
        [LINK_ID, -600],
        [LINK_ID, "600"],
        [LINK_ID, 600.0],
        [7, 600],
        None,
        "link0000001",
    ],
    ids=repr,
)
def test_well_signed_odd_payload_invalid(payload: object) -> None:
    """A token signed with our key and salt but not holding [id, lifetime > 0] is invalid."""
    with pytest.raises(LinkInvalid):
        signer().verify(foreign(payload))


def test_foreign_helper_makes_good_tokens() -> None:
    """The foreign() helper above mints exactly what LinkSigner mints (so its cases mean it)."""
    assert foreign([LINK_ID, 600]) == token()


@pytest.mark.parametrize("signed_at", [253_402_300_800, 10**15, 2**62])
def test_a_token_signed_past_the_year_9999_is_invalid(signed_at: int) -> None:
    """A good signature on a time past what a datetime holds is LinkInvalid, not a crash."""
    token = signer(KEY.encode()).mint("abc", 600, signed_at)
    with pytest.raises(LinkInvalid):
        signer(KEY.encode()).verify(token)
