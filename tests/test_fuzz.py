"""Hostile input never gets a 5xx: schemathesis against /openapi.json, a few thousand mangled
tokens on the download routes, and a few thousand mangled WeChat messages, all signed."""

from __future__ import annotations

import itertools
import random
import string
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from wechatpy.utils import WeChatSigner

from gateway.app import create_app
from sesame.service import Service
from tests.support import FILE, T0, FakeClock, make_service

pytestmark = pytest.mark.frozen_at(T0)

TOKEN = "fuzzWeChat2024"
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def fuzzed(tmp_path: Path, clock: FakeClock) -> Service:
    """A service with a link, a keyword rule, an API key and WeChat on."""
    service = make_service(tmp_path, clock, wechat_token=TOKEN)
    service.add_rule("芝麻开门", FILE, lifetime="10m")
    return service


@pytest.fixture
def app_client(fuzzed: Service) -> TestClient:
    return TestClient(create_app(fuzzed.settings, fuzzed))


@pytest.fixture
def bearer(fuzzed: Service) -> dict[str, str]:
    key = fuzzed.create_api_key("fuzz")
    return {"Authorization": f"Bearer {key.secret}"}


def test_the_api_never_answers_5xx(app_client: TestClient, bearer: dict[str, str]) -> None:
    """Whatever schemathesis makes of /openapi.json, sent with a good key and with its own,
    gets an answer below 500 on every operation (25 examples each, derandomized)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app_client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4

    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            for headers in (bearer, None):
                response = case.call(headers=headers)
                assert response.status_code < 500, (case.as_curl_command(), response.text[:300])

        call()


def hostile_tokens(good: str, count: int) -> list[str]:
    """``count`` tokens made from ``good`` by cutting, flipping, padding, encoding, and
    from nothing at all; deterministic."""
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits + "-_.~%=+/ \t²١😀\x00\x7f"
    made = [good, good + ".", "." + good, good.replace(".", ".."), good.upper(), good[::-1]]
    made += [good[:n] for n in range(0, len(good), 3)]
    while len(made) < count:
        chars = list(good)
        for _ in range(rng.randint(1, 4)):
            spot = rng.randrange(len(chars))
            match rng.randrange(4):
                case 0:
                    chars[spot] = rng.choice(alphabet)
                case 1:
                    del chars[spot]
                case 2:
                    chars.insert(spot, rng.choice(alphabet))
                case _:
                    chars[spot : spot + 3] = []
        made.append("".join(chars))
        made.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))))
    made += ["A" * 5000, "." * 300, "x.y.z", "WyJhIiwxXQ.AAAAAA.AAAA", "%2e%2e%2f" * 40]
    return made[:count]


def test_hostile_tokens_are_404_or_410(fuzzed: Service, app_client: TestClient) -> None:
    """Two thousand mangled and random tokens on both download routes: 404 or 410, never
    a 5xx, as HTML and as JSON."""
    good = fuzzed.share(FILE).url.rsplit("/", 1)[1]
    year_10000 = fuzzed.signer.mint("abc", 600, 253_402_300_800)
    tokens = hostile_tokens(good, 2000) + [year_10000]
    for number, token in enumerate(tokens):
        route = "/api/get_file/" if number % 5 == 0 else "/d/"
        accept = "application/json" if number % 2 else "text/html"
        response = app_client.get(route + quote(token, safe=""), headers={"accept": accept})
        assert response.status_code in (200, 404, 410), (token, response.status_code)


def signed_query(clock: FakeClock, nonce: str, **extra: str) -> dict[str, str]:
    timestamp = str(int(clock()))
    signer = WeChatSigner()
    signer.add_data(TOKEN, timestamp, nonce)
    return {"signature": signer.signature, "timestamp": timestamp, "nonce": nonce} | extra


def hostile_messages(count: int) -> list[bytes]:
    """``count`` WeChat-like bodies: a real text message mangled in many ways."""
    rng = random.Random(12)
    good = (
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName>"
        "<FromUserName><![CDATA[oFollower0000000000000000000]]></FromUserName>"
        f"<CreateTime>{T0}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[芝麻开门]]></Content><MsgId>1</MsgId></xml>"
    ).encode()
    pieces = [
        b"<",
        b">",
        b"]]>",
        b"<![CDATA[",
        b"&amp;",
        b"&#0;",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
        b"\xff\xfe",
        b"\x00",
        b"<Event>subscribe</Event>",
        b"<MsgType>event</MsgType>",
        b"<FromUserName>../../x</FromUserName>",
        b"<MsgId>99999999999999999999999999</MsgId>",
        b"<CreateTime>\xc2\xb2</CreateTime>",
        b"<Content>" + "芝".encode() * 500 + b"</Content>",
    ]
    made = [good, b"", b"<xml/>", b"<xml>" * 500, good * 3]
    while len(made) < count:
        body = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            spot = rng.randrange(len(body) + 1)
            if rng.random() < 0.5:
                body[spot:spot] = rng.choice(pieces)
            else:
                del body[spot : spot + rng.randint(1, 20)]
        made.append(bytes(body))
    return made[:count]


def test_hostile_wechat_messages_never_get_a_5xx(app_client: TestClient, clock: FakeClock) -> None:
    """Two thousand mangled bodies, each correctly signed with a nonce of its own (so that
    they reach the parser), and a few hostile query strings: every answer is below 500."""
    nonces = (str(n) for n in itertools.count(1))
    for body in hostile_messages(2000):
        query = signed_query(clock, next(nonces))
        response = app_client.post("/wechat", params=query, content=body)
        assert response.status_code < 500, body[:200]
    for extra in ({"encrypt_type": "aes"}, {"encrypt_type": "²"}, {"msg_signature": "x" * 9000}):
        query = signed_query(clock, next(nonces), **extra)
        assert app_client.post("/wechat", params=query, content=b"<xml/>").status_code < 500
