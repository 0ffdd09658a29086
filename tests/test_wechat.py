"""The WeChat Official Account endpoint, with WeChat's side played by wechatpy: messages are
signed (and in safe mode encrypted) as WeChat signs them, posted to the in-process gateway,
and the replies are decrypted and parsed with wechatpy; the links in them are followed."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmltodict
from fastapi.testclient import TestClient
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from gateway.app import create_app
from gateway.wechat import UNAVAILABLE
from sesame.service import Service
from sesame.settings import DEFAULT_WECHAT_HELP
from tests.support import BODY, FILE, REPO, T0, FakeClock, make_service, path_of

pytestmark = pytest.mark.frozen_at(T0)

TOKEN = "sesameWeChat2024"
APP_ID = "wx5a1b2c3d4e5f6a7b"
AES_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # 43 characters, as in the console
ACCOUNT = "gh_3f1e2d4c5b6a"
OPENID = "oWx1p5ABCDEFGHIJKLMNOPQRSTUV"


def text_message(content: str, openid: str = OPENID) -> str:
    """A text message as WeChat's servers write it (their documented format)."""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{T0}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>24602925186478032</MsgId></xml>"
    )


def event_message(event: str, key: str = "", openid: str = OPENID) -> str:
    """An event push (subscribe, unsubscribe, CLICK) in WeChat's format."""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{T0}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


def image_message() -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>{T0}</CreateTime>"
        "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl>"
        "<MediaId><![CDATA[media_id]]></MediaId><MsgId>24602925186478033</MsgId></xml>"
    )


NONCES = itertools.count(1405803721)


def signature(token: str, *parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, *parts)
    return str(signer.signature)


@dataclass
class WeChat:
    """WeChat's servers, as far as the gateway can tell: they sign, encrypt and post."""

    client: TestClient
    clock: FakeClock
    crypto: WeChatCrypto | None
    nonce: str = "1405803721"

    def query(self, **overrides: str) -> dict[str, str]:
        timestamp = str(int(self.clock()))
        query = {
            "signature": signature(TOKEN, timestamp, self.nonce),
            "timestamp": timestamp,
            "nonce": self.nonce,
            "openid": OPENID,
        }
        return query | overrides

    def post(self, xml: str | bytes, **overrides: str) -> httpx.Response:
        """Post a message as WeChat does: in safe mode encrypted, with msg_signature."""
        query = self.query()
        if self.crypto is not None and isinstance(xml, str):
            xml = self.crypto.encrypt_message(xml, self.nonce, query["timestamp"])
            envelope = xmltodict.parse(xml)["xml"]
            query |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
        response = self.client.post("/wechat", params=query | overrides, content=xml)
        self.nonce = str(next(NONCES))  # each of WeChat's requests has a nonce of its own
        return response

    def reply(self, response: httpx.Response, openid: str = OPENID) -> Any:
        """The reply, decrypted and checked with wechatpy in safe mode, parsed."""
        assert response.status_code == 200, response.text
        xml = response.text
        if self.crypto is not None:
            envelope = xmltodict.parse(xml)["xml"]
            xml = self.crypto.decrypt_message(
                xml, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
            )
        message = parse_message(xml)
        assert message.type == "text"
        assert (message.source, message.target) == (ACCOUNT, openid)
        return message

    def ask(self, content: str, openid: str = OPENID) -> str:
        """Send a text and return the text of the reply."""
        content_text: str = self.reply(self.post(text_message(content, openid)), openid).content
        return content_text


@pytest.fixture(params=["plaintext", "safe"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock, mode: str) -> Iterator[Service]:
    safe = {"wechat_app_id": APP_ID, "wechat_aes_key": AES_KEY} if mode == "safe" else {}
    built = make_service(tmp_path, clock, wechat_token=TOKEN, **safe)
    built.add_rule("芝麻开门", FILE, lifetime="10m", max_downloads=3, cooldown="10m")
    yield built
    built.store.close()


@pytest.fixture
def wechat(client: TestClient, clock: FakeClock, mode: str) -> WeChat:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID) if mode == "safe" else None
    return WeChat(client, clock, crypto)


def url_in(text: str) -> str:
    found = re.search(r"http://\S+/d/\S+", text)
    assert found, text
    return found.group(0)


# -- the server check -----------------------------------------------------------------------


def test_the_server_check_echoes_echostr(wechat: WeChat) -> None:
    """GET /wechat with WeChat's signature answers echostr as is, in both modes."""
    response = wechat.client.get("/wechat", params=wechat.query(echostr="8190457532561358437"))
    assert response.status_code == 200 and response.text == "8190457532561358437"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 40},
        {"nonce": "another-nonce"},
        {"timestamp": str(T0 + 1)},
        {"signature": ""},
    ],
    ids=["signature", "nonce", "timestamp", "empty"],
)
def test_a_bad_signature_gets_403(wechat: WeChat, change: dict[str, str]) -> None:
    """A signature that does not match token, timestamp and nonce: 403 for GET and POST."""
    query = wechat.query(echostr="x") | change
    assert wechat.client.get("/wechat", params=query).status_code == 403
    assert wechat.post(text_message("芝麻开门"), **change).status_code == 403


def test_an_old_signed_request_is_not_replayed(wechat: WeChat, clock: FakeClock) -> None:
    """A correctly signed request from more than five minutes ago gets 403."""
    old = wechat.query(echostr="x")
    clock.now = T0 + 301
    assert wechat.client.get("/wechat", params=old).status_code == 403


# -- keywords -----------------------------------------------------------------------------


def test_a_keyword_is_answered_with_a_link_that_downloads(wechat: WeChat, service: Service) -> None:
    """The reply holds a fresh link for the sender, its expiry and the file's SHA-256; the
    link downloads the file."""
    text = wechat.ask("芝麻开门")
    url = url_in(text)
    assert "2027-01-15 16:10 (UTC+8)" in text and "10 分钟内有效" in text
    assert service.catalog.info(FILE).sha256 in text
    response = wechat.client.get(path_of(service, url))
    assert response.status_code == 200 and response.content == BODY
    [link] = service.links()
    assert (link.url, link.link.recipient, link.link.max_downloads) == (url, OPENID, 3)
    assert link.link.lifetime == 600 and link.link.downloads == 1


def test_the_same_sender_within_the_cooldown_gets_the_same_link(
    wechat: WeChat, clock: FakeClock, service: Service
) -> None:
    """Asking again within the cool-down returns the same link; after it, a new one."""
    first = url_in(wechat.ask("芝麻开门"))
    clock.now = T0 + 599
    assert url_in(wechat.ask("芝麻 开门!")) == first
    assert url_in(wechat.ask("芝麻开门", openid="oOtherFollower0000000000000")) != first
    clock.now = T0 + 600
    assert url_in(wechat.ask("芝麻开门")) != first
    assert len(service.links(include_inactive=True)) == 3


def test_messages_at_once_from_one_sender_make_one_link(wechat: WeChat, service: Service) -> None:
    """Eight copies of a message arriving together (WeChat retries, impatient followers)
    all get the same link, and only one link is made."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: wechat.ask("芝麻开门"), range(8)))
    assert len({url_in(text) for text in replies}) == 1
    assert len(service.links()) == 1


def test_other_texts_get_the_help_reply(wechat: WeChat, service: Service) -> None:
    """A text that matches no rule gets the help text and makes no link."""
    assert wechat.ask("hello") == DEFAULT_WECHAT_HELP
    assert service.links() == []


def test_the_help_reply_is_configurable(tmp_path: Path, clock: FakeClock) -> None:
    """SESAME_WECHAT_HELP replaces the help text."""
    service = make_service(tmp_path, clock, wechat_token=TOKEN, wechat_help="回复 芝麻开门")
    wechat = WeChat(TestClient(create_app(service.settings, service)), clock, None)
    assert wechat.ask("?") == "回复 芝麻开门"
    service.store.close()


@pytest.mark.parametrize(
    "xml", [event_message("subscribe"), image_message()], ids=["subscribe", "image"]
)
def test_new_followers_and_other_messages_get_help(wechat: WeChat, xml: str) -> None:
    """A subscribe event and a non-text message are answered with the help text."""
    assert wechat.reply(wechat.post(xml)).content == DEFAULT_WECHAT_HELP


def test_other_events_get_no_reply(wechat: WeChat) -> None:
    """Events nobody reads a reply to (unsubscribe) are answered with "success"."""
    response = wechat.post(event_message("unsubscribe"))
    assert response.status_code == 200 and response.text == "success"


def test_a_menu_button_can_ask_for_the_keyword(wechat: WeChat, service: Service) -> None:
    """A CLICK event whose key is a keyword is answered like the keyword itself."""
    text = wechat.reply(wechat.post(event_message("CLICK", key="芝麻开门"))).content
    assert wechat.client.get(path_of(service, url_in(text))).content == BODY


def test_a_missing_file_gets_a_polite_reply(wechat: WeChat, service: Service) -> None:
    """If the rule's file was removed, the follower is told so; no link is made."""
    (service.settings.files_dir / FILE).unlink()
    assert wechat.ask("芝麻开门") == UNAVAILABLE
    assert service.links() == []


def test_cdata_in_a_file_name_cannot_break_the_reply(wechat: WeChat, service: Service) -> None:
    """A file name holding "]]>" arrives intact in a reply that still parses."""
    name = "odd]]><b>name.txt"
    (service.settings.files_dir / name).write_bytes(b"odd")
    service.add_rule("odd", name, template="{file} {url}")
    assert wechat.ask("odd").startswith(name + " http://")


def test_the_reply_is_fast(wechat: WeChat, service: Service) -> None:
    """Even for a 64 MiB file hashed for the first time, the reply takes well under 5 s."""
    with (service.settings.files_dir / "big.bin").open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    service.catalog = type(service.catalog)(service.settings.files_dir)  # a cold hash cache
    service.add_rule("big", "big.bin")
    started = time.monotonic()
    url_in(wechat.ask("big"))
    assert time.monotonic() - started < 2


# -- what did not come from WeChat ----------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>'
    f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
    "<MsgType>text</MsgType><Content>&lol9;</Content></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
    "<MsgType>text</MsgType><Content>&xxe;</Content></xml>"
)
HOSTILE: dict[str, str | bytes] = {
    "billion-laughs": BILLION_LAUGHS,
    "external-entity": EXTERNAL_ENTITY,
    "doctype-with-spaces": "<! DOCTYPE x><xml/>",
    "truncated": text_message("芝麻开门")[:90],
    "not-xml": "芝麻开门",
    "json": '{"MsgType": "text"}',
    "empty": "",
    "no-msgtype": f"<xml><FromUserName>{OPENID}</FromUserName></xml>",
    "nested-sender": text_message(
        "芝麻开门", openid="]]><FromUserName><a>b</a></FromUserName><x><![CDATA["
    ),
    "sender-with-markup": text_message("芝麻开门", openid="a<b>c"),
    "other-root": f"<root><MsgType>text</MsgType><FromUserName>{OPENID}</FromUserName></root>",
    "not-utf8": b"<xml><Content>\xff\xfe</Content></xml>",
    "deep": "<xml>" + "<a>" * 5000 + "</a>" * 5000 + "</xml>",
    "huge": "<xml><Content>" + "x" * (1024 * 1024) + "</Content></xml>",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_malformed_xml_never_gets_a_500(
    wechat: WeChat, body: str | bytes, service: Service
) -> None:
    """Well signed, but not a message: 400 or 413 and no link, never a 500."""
    response = wechat.post(body)
    assert response.status_code in (400, 413)
    assert service.links() == []


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
def test_hostile_xml_inside_the_encryption_is_refused(
    tmp_path: Path, clock: FakeClock, body: str
) -> None:
    """Entities are refused also when they arrive properly encrypted in safe mode."""
    service = make_service(
        tmp_path, clock, wechat_token=TOKEN, wechat_app_id=APP_ID, wechat_aes_key=AES_KEY
    )
    wechat = WeChat(TestClient(create_app(service.settings, service)), clock, None)
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    sealed = crypto.encrypt_message(body, wechat.nonce, str(T0))
    msg_signature = xmltodict.parse(sealed)["xml"]["MsgSignature"]
    response = wechat.post(sealed, encrypt_type="aes", msg_signature=msg_signature)
    assert response.status_code == 400
    service.store.close()


def test_a_huge_body_is_refused_by_its_length(wechat: WeChat) -> None:
    """A Content-Length beyond 64 KiB is refused before the body is read."""
    response = wechat.client.post(
        "/wechat", params=wechat.query(), content=b"<xml>" + b" " * (65 * 1024) + b"</xml>"
    )
    assert response.status_code == 413


@pytest.mark.parametrize("mode", ["safe"])
def test_safe_mode_checks_the_message_signature_and_appid(
    wechat: WeChat, clock: FakeClock, mode: str
) -> None:
    """A bad msg_signature, another account's AppID, or a plaintext message: refused."""
    xml = text_message("芝麻开门")
    assert wechat.post(xml, msg_signature="0" * 40).status_code == 403
    stranger = WeChat(wechat.client, clock, WeChatCrypto(TOKEN, AES_KEY, "wx0000000000000000"))
    assert stranger.post(xml).status_code == 403
    plain = WeChat(wechat.client, clock, None)
    assert plain.post(xml).status_code == 400


@pytest.mark.parametrize("mode", ["plaintext"])
def test_an_encrypted_message_without_an_aes_key_is_refused(wechat: WeChat, mode: str) -> None:
    """Plaintext mode cannot read a safe-mode message: 400, not a 500."""
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    sealed = crypto.encrypt_message(text_message("芝麻开门"), wechat.nonce, str(T0))
    response = wechat.post(sealed, encrypt_type="aes", msg_signature="x")
    assert response.status_code == 400


def test_without_a_token_there_is_no_endpoint(tmp_path: Path, clock: FakeClock) -> None:
    """With SESAME_WECHAT_TOKEN unset, /wechat does not exist."""
    service = make_service(tmp_path, clock)
    client = TestClient(create_app(service.settings, service))
    assert client.get("/wechat").status_code == 404
    assert client.post("/wechat", content=text_message("芝麻开门")).status_code in (404, 405)
    service.store.close()


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("wechat_token", "no spaces allowed"),
        ("wechat_aes_key", "tooshort"),
        ("wechat_aes_key", AES_KEY),  # without an AppID
        ("wechat_timezone", "Mars/Olympus"),
        ("api_auth_failures", "lots"),
        ("wechat_help", "帮" * 700),
    ],
)
def test_unusable_settings_are_refused_with_their_name(setting: str, value: str) -> None:
    """Each bad value is a ConfigError naming the variable."""
    from sesame.errors import ConfigError
    from sesame.settings import load_settings

    with pytest.raises(ConfigError, match=f"SESAME_{setting.upper()}"):
        load_settings(**{setting: value, "_env_file": None})


NEW_SETTINGS = [
    "SESAME_WECHAT_TOKEN",
    "SESAME_WECHAT_APP_ID",
    "SESAME_WECHAT_AES_KEY",
    "SESAME_WECHAT_HELP",
    "SESAME_WECHAT_TIMEZONE",
    "SESAME_API_AUTH_FAILURES",
]


@pytest.mark.parametrize("name", NEW_SETTINGS)
def test_the_settings_are_documented(name: str) -> None:
    """Every WeChat and API setting is in the README's table and in .env.example."""
    readme = (REPO / "README.md").read_text()
    assert f"| `{name}` |" in readme
    assert re.search(rf"^#?\s*{name}=", (REPO / ".env.example").read_text(), re.MULTILINE)


def test_a_replayed_request_is_refused(wechat: WeChat, service: Service, clock: FakeClock) -> None:
    """The same signed request sent again after its answer has been forgotten, still within
    the five-minute window, gets 403 and makes nothing."""
    query = wechat.query()
    xml = text_message("芝麻开门")
    body: str | bytes = xml
    if wechat.crypto is not None:
        body = wechat.crypto.encrypt_message(xml, wechat.nonce, query["timestamp"])
        envelope = xmltodict.parse(body)["xml"]
        query |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
    assert wechat.client.post("/wechat", params=query, content=body).status_code == 200
    clock.advance(120)
    again = wechat.client.post("/wechat", params=query, content=body)
    assert again.status_code == 403
    assert len(service.links()) == 1


def test_a_message_sent_again_gets_the_first_answer(
    wechat: WeChat, service: Service, clock: FakeClock
) -> None:
    """WeChat's retries of one message (same MsgId, new nonce) get the first answer, even on
    a rule whose cool-down would otherwise make a new link each time."""
    service.add_rule("again", FILE, lifetime="10m", cooldown="0")
    first = wechat.ask("again")
    clock.advance(5)
    assert wechat.ask("again") == first
    clock.advance(5)
    assert wechat.ask("again") == first
    assert len(service.links()) == 1


@pytest.mark.parametrize("timestamp", ["²", "١٢٣", "9" * 5000, "-1", " 1"])
def test_a_strange_timestamp_is_refused_not_a_500(wechat: WeChat, timestamp: str) -> None:
    """A signed timestamp that is not a plain number is 403, never 500."""
    query = wechat.query() | {"timestamp": timestamp}
    query["signature"] = signature(TOKEN, timestamp, wechat.nonce)
    assert wechat.client.get("/wechat", params=query | {"echostr": "x"}).status_code == 403
    response = wechat.client.post("/wechat", params=query, content=text_message("芝麻开门"))
    assert response.status_code in (400, 403)


def test_a_strange_content_length_is_refused_not_a_500(wechat: WeChat) -> None:
    """A Content-Length of ``²`` is 413, never 500."""
    response = wechat.client.post(
        "/wechat",
        params=wechat.query(),
        content=b"x",
        headers={"content-length": "²".encode("latin-1")},
    )
    assert response.status_code < 500
