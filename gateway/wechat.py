"""The WeChat Official Account endpoint: a follower sends a keyword, Sesame answers with a link.

wechatpy checks the signatures, parses the messages, builds the replies and, in safe mode,
decrypts and encrypts them exactly as WeChat does; this module refuses what did not come
from WeChat and asks ``Service.keyword_reply`` what to answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from sesame.errors import FileMissing, StoreUnavailable
from sesame.service import Service

log = logging.getLogger("sesame.wechat")

MAX_BODY = 64 * 1024  # WeChat's messages are a few hundred bytes
MAX_SKEW = 300  # seconds WeChat's timestamp may differ from our clock: limits replays
NONCE_KEEP = 2 * MAX_SKEW + 60  # a nonce is remembered as long as its timestamp passes
SLOW = 3.0  # WeChat gives up after 5 seconds; warn well before
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # OpenIDs and account ids (gh_...)
# WeChat never sends a DTD; refusing one stops entity tricks before any parser sees them.
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
UNAVAILABLE = (
    "这个文件暂时无法提供,请稍后再试。\nThis file is not available right now; please try later."
)
NO_REPLY = "success"  # what WeChat expects when there is nothing to say


class Refused(Exception):
    """A request that did not come from WeChat or cannot be a WeChat message."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Answers:
    """The answers given lately, by message. WeChat sends a message again when our answer
    is slow (three tries, five seconds apart): a copy that arrives while the first is being
    answered, or up to KEEP seconds after, gets the first one's answer, and nothing is made
    twice. Thread-safe, and safe across event loops (concurrent futures)."""

    KEEP = 60  # seconds: longer than WeChat's retries
    MAX = 10_000  # answers kept at most; a burst past it only forgets them early

    def __init__(self) -> None:
        self._kept: dict[str, tuple[float, Future[str | None]]] = {}
        self._lock = threading.Lock()

    async def answer(
        self, key: str, now: float, make: Callable[[], Awaitable[str | None]]
    ) -> str | None:
        """The answer to message ``key``: the one given before, or the one ``make`` gives."""
        with self._lock:
            kept = self._kept.get(key)
            first = kept is None or kept[0] <= now
            if first:
                self._forget_old(now)
                kept = (now + self.KEEP, Future())
                self._kept[key] = kept
        assert kept is not None
        future = kept[1]
        if not first:
            return await asyncio.shield(asyncio.wrap_future(future))
        try:
            text = await make()
        except BaseException as exc:
            with self._lock:
                self._kept.pop(key, None)
            future.set_exception(exc)
            raise
        future.set_result(text)
        return text

    def _forget_old(self, now: float) -> None:
        if len(self._kept) >= self.MAX:
            self._kept = {k: v for k, v in self._kept.items() if v[0] > now or not v[1].done()}
            if len(self._kept) >= self.MAX:
                self._kept.clear()


@dataclass(frozen=True)
class Endpoint:
    """The account's settings, and its crypto in safe mode (built once per app)."""

    token: str
    crypto: WeChatCrypto | None
    help: str
    answers: Answers = field(default_factory=Answers)


def install(app: FastAPI) -> None:
    """Serve ``/wechat`` if SESAME_WECHAT_TOKEN is set; without it the route does not exist."""
    settings = app.state.service.settings
    if settings.wechat_token is None:
        return
    token = settings.wechat_token.get_secret_value()
    crypto = None
    if settings.wechat_aes_key is not None:
        aes_key = settings.wechat_aes_key.get_secret_value()
        crypto = WeChatCrypto(token, aes_key, settings.wechat_app_id)
    app.state.wechat = Endpoint(token, crypto, settings.wechat_help)
    app.add_api_route("/wechat", verify_server, methods=["GET"], include_in_schema=False)
    app.add_api_route("/wechat", receive, methods=["POST"], include_in_schema=False)


async def verify_server(request: Request) -> Response:
    """WeChat's server check: a good signature is answered with ``echostr``, as is."""
    try:
        _check_signature(request)
    except Refused as exc:
        log.warning("wechat: refused the server check: %s", exc)
        return PlainTextResponse(str(exc), status_code=exc.status)
    return PlainTextResponse(request.query_params.get("echostr", ""))


async def receive(request: Request) -> Response:
    """A message from a follower: a keyword gets its link, anything else the help text."""
    started = time.monotonic()
    endpoint: Endpoint = request.app.state.wechat
    try:
        _check_signature(request)
        xml = _plaintext(endpoint, request, await _body(request))
        message = _parse(xml)
    except Refused as exc:
        log.warning("wechat: refused a message (%d): %s", exc.status, exc)
        return PlainTextResponse("" if exc.status < 403 else str(exc), status_code=exc.status)
    service: Service = request.app.state.service
    now = service.clock()

    async def make() -> str | None:
        # The first copy of a message: a signed request seen before is a replay.
        if not await run_in_threadpool(
            service.store.seen_once, _nonce_key(request), int(now), NONCE_KEEP
        ):
            raise Refused(403, "a signed request seen before (replayed)")
        return await run_in_threadpool(_answer, endpoint, service, message)

    try:
        text = await endpoint.answers.answer(_message_key(message), now, make)
    except Refused as exc:
        log.warning("wechat: refused a message (%d): %s", exc.status, exc)
        return PlainTextResponse(str(exc), status_code=exc.status)
    body = NO_REPLY if text is None else _reply(endpoint, request, message, text)
    elapsed = time.monotonic() - started
    if elapsed > SLOW:
        log.warning("wechat: the reply took %.1fs; WeChat gives up after 5s", elapsed)
    return Response(body, media_type="application/xml" if text else "text/plain")


def _nonce_key(request: Request) -> str:
    """What makes a signed request unique: its signature over timestamp and nonce."""
    query = request.query_params
    parts = (query.get("signature", ""), query.get("timestamp", ""), query.get("nonce", ""))
    return "wechat:" + sha256("\n".join(parts).encode()).hexdigest()[:32]


def _message_key(message: Any) -> str:
    """One message however often WeChat sends it: its sender, its MsgId (events have none:
    their time, as WeChat's guide says) and what it says."""
    said = getattr(message, "content", None) or getattr(message, "key", None) or ""
    parts = (message.source, str(message.id or message.create_time), message.type, str(said))
    return sha256("\n".join(parts).encode()).hexdigest()


def _check_signature(request: Request) -> None:
    query = request.query_params
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    endpoint: Endpoint = request.app.state.wechat
    try:
        check_signature(endpoint.token, query.get("signature", ""), timestamp, nonce)
    except InvalidSignatureException:
        raise Refused(403, "bad signature") from None
    now = request.app.state.service.clock()
    if not _number(timestamp) or abs(int(timestamp) - now) > MAX_SKEW:
        # Also what a wrong server clock looks like: say so in the log.
        raise Refused(403, f"timestamp {timestamp!r} is more than {MAX_SKEW}s from our clock")


def _number(text: str) -> bool:
    """Whether ``text`` is a plain decimal number that int() reads: str.isdigit() alone also
    accepts ``²`` and other digits int() refuses, and int() refuses 5,000 of them."""
    return text.isascii() and text.isdigit() and len(text) <= 20


async def _body(request: Request) -> bytes:
    """The request body, refused (413) past MAX_BODY without reading the rest."""
    declared = request.headers.get("content-length", "0")
    if not _number(declared) or int(declared) > MAX_BODY:
        raise Refused(413, "body too large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise Refused(413, "body too large")
    except ClientDisconnect:
        raise Refused(400, "client went away") from None
    return bytes(body)


def _plaintext(endpoint: Endpoint, request: Request, body: bytes) -> str:
    """The message's XML: decrypted in safe mode, where a plaintext message is refused."""
    text = _screen(body)
    encrypted = request.query_params.get("encrypt_type", "raw").lower() == "aes"
    if endpoint.crypto is None:
        if encrypted:
            raise Refused(400, "an encrypted message, but SESAME_WECHAT_AES_KEY is not set")
        return text
    if not encrypted:
        raise Refused(400, "a plaintext message, but safe mode is set (SESAME_WECHAT_AES_KEY)")
    query = request.query_params
    try:
        xml: str = endpoint.crypto.decrypt_message(
            text, query.get("msg_signature", ""), query.get("timestamp"), query.get("nonce")
        )
    except (InvalidSignatureException, InvalidAppIdException):
        raise Refused(403, "bad message signature or AppID") from None
    except Exception as exc:  # any failure to decrypt hostile input is a 400
        raise Refused(400, f"cannot decrypt the message ({type(exc).__name__})") from None
    return _screen(xml.encode())


def _screen(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "not UTF-8") from None
    if _DTD.search(text):
        raise Refused(400, "XML with a DTD or entities")
    return text


def _parse(xml: str) -> Any:
    try:
        message = parse_message(xml)
    except Exception as exc:  # xmltodict and wechatpy raise many kinds
        raise Refused(400, f"not a WeChat message ({type(exc).__name__})") from None
    if message is None:
        raise Refused(400, "empty message")
    for value in (message.source, message.target):
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise Refused(400, "a message without a proper sender or account")
    try:  # wechatpy converts these when first read: read them here, where a refusal is due
        message.id, message.create_time  # noqa: B018
    except (ValueError, TypeError, OverflowError, OSError):
        raise Refused(400, "a message whose MsgId or CreateTime is not a number") from None
    return message


def _answer(endpoint: Endpoint, service: Service, message: Any) -> str | None:
    """What to say: a link for a keyword (a text, or a menu button's key), the help text
    for other messages and for new followers, nothing for other events."""
    if message.type == "text":
        keyword = message.content
    elif message.type == "event" and message.event == "click":
        keyword = message.key
    elif message.type == "event":
        return endpoint.help if message.event in ("subscribe", "subscribe_scan") else None
    else:
        return endpoint.help
    if not isinstance(keyword, str) or not keyword.strip():
        return endpoint.help
    try:
        reply = service.keyword_reply(keyword, message.source)
    except (FileMissing, StoreUnavailable) as exc:
        log.error("wechat: the rule for %r cannot be answered: %s", keyword, exc)
        return UNAVAILABLE
    return endpoint.help if reply is None else reply


def _reply(endpoint: Endpoint, request: Request, message: Any, text: str) -> str:
    # wechatpy puts the text in CDATA as is; split any "]]>" so it cannot end the section.
    content = text.replace("]]>", "]]]]><![CDATA[>")
    xml: str = TextReply(content=content, message=message).render()
    if endpoint.crypto is None:
        return xml
    query = request.query_params
    encrypted: str = endpoint.crypto.encrypt_message(
        xml, query.get("nonce"), query.get("timestamp")
    )
    return encrypted


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At startup, hash the files of keyword rules in the background, so that the first
    reply does not spend WeChat's five seconds on a large file's SHA-256."""
    if getattr(app.state, "wechat", None) is not None:
        service: Service = app.state.service
        threading.Thread(target=_warm, args=(service,), name="sesame-warm", daemon=True).start()
    yield


def _warm(service: Service) -> None:
    try:
        for rule in service.rules():
            service.catalog.info(rule.file)
    except Exception:  # a cold cache is slower, not broken
        log.warning("wechat: could not hash the rules' files in advance", exc_info=True)
