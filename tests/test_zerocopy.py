"""gateway.zerocopy under a real uvicorn (the Procfile's options): bodies sent by the kernel
arrive byte for byte, ranges included, and a download cut short is known to be cut short."""

from __future__ import annotations

import os
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway import zerocopy
from gateway.files import Files
from gateway.responses import DownloadResponse
from gateway.zerocopy import EXTENSION, ZeroCopyProtocol
from sesame import ranges
from sesame.catalog import Catalog
from sesame.models import Outcome
from sesame.service import Service
from tests.support import free_port, gateway_of_files

pytestmark = pytest.mark.e2e

SIZE = 40 * 1024 * 1024 + 12345  # several zero-copy chunks and an odd tail


@dataclass(frozen=True)
class Gateway:
    url: str
    service: Service
    file: Path
    log: Path

    def link(
        self, file: str = "big.bin", max_downloads: int | None = None, rate: str | None = None
    ) -> str:
        """The path of a new link to ``file``."""
        shared = self.service.share(file, max_downloads=max_downloads, rate=rate)
        return urlsplit(shared.url).path

    def link_id(self, path: str) -> str:
        """The id of the link at ``path``."""
        return self.service.signer.read(path.rsplit("/", 1)[1]).link_id


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("zerocopy")
    with gateway_of_files(home, {"big.bin": os.urandom(SIZE)}) as (url, service):
        yield Gateway(url, service, home / "files" / "big.bin", home / "gateway.log")


def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)  # polling another process's progress


@contextmanager
def serving(
    app: Callable[[Scope, Receive, Send], object],
    http: str | type,
    access_log: bool = True,
    **tls: str,
) -> Iterator[str]:
    """``app`` under an in-process uvicorn with the ``http`` protocol (and ``ssl_keyfile``
    and ``ssl_certfile`` if given); yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        http=http,  # type: ignore[arg-type]
        loop="uvloop",
        lifespan="off",
        access_log=access_log,
        **tls,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        wait_for(lambda: server.started)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def test_the_protocol_sends_the_slices_it_is_given(tmp_path: Path) -> None:
    """ZeroCopyProtocol offers the extension; zero-copy messages, mixed with ordinary ones,
    send exactly the slices they name. Plain httptools does not offer it."""
    data = os.urandom(100_000)
    (tmp_path / "f").write_bytes(data)
    offered: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        offered.append(EXTENSION in scope.get("extensions", {}))
        headers = [(b"content-length", b"30005")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"head:", "more_body": True})
        if offered[-1]:
            with (tmp_path / "f").open("rb") as file:
                for offset in (50_000, 10):
                    message = {"type": EXTENSION, "file": file, "offset": offset}
                    await send({**message, "count": 15_000, "more_body": offset != 10})
        else:
            body = data[50_000:65_000] + data[10:15_010]
            await send({"type": "http.response.body", "body": body})

    with serving(app, ZeroCopyProtocol) as url:
        assert httpx.get(url).content == b"head:" + data[50_000:65_000] + data[10:15_010]
    with serving(app, "httptools") as url:
        assert httpx.get(url).status_code == 200
    assert offered == [True, False]


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux's")
def test_a_zero_copy_message_is_corked_while_it_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each zero-copy message is sent with the socket corked (full segments only, as
    nginx's tcp_nopush) and uncorked after it, so that its last short segment goes at once,
    before the next message or a pause of the pacer."""
    (tmp_path / "f").write_bytes(os.urandom(100_000))
    states: list[tuple[bool, int]] = []
    cork = zerocopy._cork

    def spying(fd: int, on: bool) -> None:
        cork(fd, on)
        sock = socket.socket(fileno=fd)
        states.append((on, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)))
        sock.detach()

    monkeypatch.setattr(zerocopy, "_cork", spying)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"100000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with (tmp_path / "f").open("rb") as file:
            for offset in (0, 60_000):
                message = {"type": EXTENSION, "file": file, "offset": offset}
                count = 60_000 if offset == 0 else 40_000
                await send({**message, "count": count, "more_body": offset == 0})

    with serving(app, ZeroCopyProtocol) as url:
        assert httpx.get(url).content == (tmp_path / "f").read_bytes()
    assert states == [(True, 1), (False, 0), (True, 1), (False, 0)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_client_that_resets_mid_body_is_gone_and_costs_no_descriptor(tmp_path: Path) -> None:
    """A client that resets the connection during a zero-copy body makes the send raise
    ClientGone (an OSError, as the ASGI spec asks), after the socket's cork is released
    through the send's own descriptor, which is closed: none is left open, whatever the
    transport's socket became meanwhile."""
    (tmp_path / "f").write_bytes(os.urandom(8 * 1024 * 1024))
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", str(8 * 1024 * 1024).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with (tmp_path / "f").open("rb") as file:
            message = {"type": EXTENSION, "file": file, "offset": 0, "count": 8 * 1024 * 1024}
            try:
                await send(message)
            except BaseException as exc:
                raised.append(exc)
                raise

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    with serving(app, ZeroCopyProtocol) as url:
        port = int(url.rsplit(":", 1)[1])
        before = open_descriptors()
        for _ in range(3):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", port))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            client.recv(1000)
            time.sleep(0.2)  # the server's sendfile now waits for room
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # a reset
        wait_for(lambda: len(raised) == 3)
        wait_for(lambda: open_descriptors() <= before)
    assert all(isinstance(exc, zerocopy.ClientGone) for exc in raised), raised


def test_no_zero_copy_over_tls(tmp_path: Path) -> None:
    """On a TLS connection the extension is not offered (sendfile would bypass the
    encryption), and the gateway's file response still arrives intact over HTTPS."""
    key, cert = self_signed(tmp_path)
    data = os.urandom(300_000)
    (tmp_path / "f.bin").write_bytes(data)
    offered: list[bool] = []
    files = Files(Catalog(tmp_path), 0)

    async def finish(delivered: int, completed: bool) -> None:
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        offered.append(EXTENSION in scope.get("extensions", {}))
        response = DownloadResponse(files.open("f.bin"), ranges.whole(len(data)), finish)
        await response(scope, receive, send)

    with serving(app, ZeroCopyProtocol, ssl_keyfile=str(key), ssl_certfile=str(cert)) as url:
        trusted = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(url, verify=trusted).content == data
    assert offered == [False]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1, made with cryptography."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_whole_file_arrives_intact(gateway: Gateway) -> None:
    """A full download is the file, byte for byte, and counts once as completed."""
    path = gateway.link()
    response = httpx.get(gateway.url + path, timeout=60)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.content == gateway.file.read_bytes()
    event = gateway.service.events(gateway.link_id(path))[0]
    assert (event.outcome, event.bytes_sent, event.counted) == (Outcome.COMPLETED, SIZE, True)


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-", 1000, SIZE - 1),
        ("bytes=-5000", SIZE - 5000, SIZE - 1),
        ("bytes=16777215-33554432", 16777215, 33554432),
    ],
)
def test_ranges_arrive_intact(gateway: Gateway, header: str, first: int, last: int) -> None:
    """Single ranges, across chunk boundaries too, are exactly the bytes asked for."""
    response = httpx.get(gateway.url + gateway.link(), headers={"Range": header}, timeout=60)
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    with gateway.file.open("rb") as source:
        source.seek(first)
        assert response.content == source.read(last - first + 1)


def test_multiple_ranges_still_work(gateway: Gateway) -> None:
    """Several ranges at once go the ordinary streaming way and still arrive."""
    response = httpx.get(
        gateway.url + gateway.link(), headers={"Range": "bytes=0-9,100-109"}, timeout=60
    )
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges")
    data = gateway.file.read_bytes()
    assert data[0:10] in response.content and data[100:110] in response.content


def test_head_sends_no_body(gateway: Gateway) -> None:
    """HEAD answers with the length and no body."""
    response = httpx.head(gateway.url + gateway.link(), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE) and response.content == b""


def test_a_capped_link_is_paced_through_zero_copy(gateway: Gateway) -> None:
    """A 96 KiB file on a link capped at 64 KiB/s goes in 16 KiB zero-copy slices, and the
    last cannot leave before the 80 KiB ahead of it took 1.25 s. (A lower bound only.)"""
    data = os.urandom(96 * 1024)
    (gateway.file.parent / "paced.bin").write_bytes(data)
    path = gateway.link("paced.bin", rate="64KiB")
    started = time.monotonic()
    response = httpx.get(gateway.url + path, timeout=60)
    took = time.monotonic() - started
    assert response.content == data
    assert took >= 1.25


def test_a_file_removed_since_it_was_last_looked_at_is_missing(gateway: Gateway) -> None:
    """A file removed since the last request is answered 404 with the usual page, not a
    broken response, and takes nothing."""
    (gateway.file.parent / "gone.bin").write_bytes(os.urandom(1024 * 1024))
    path = gateway.link("gone.bin", max_downloads=1)
    assert httpx.head(gateway.url + path).status_code == 200  # looked at now
    (gateway.file.parent / "gone.bin").unlink()
    response = httpx.get(gateway.url + path, headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 404 and "Ask the person who shared it" in response.text
    assert gateway.service.link(gateway.link_id(path)).link.downloads == 0
    assert "Traceback" not in gateway.log.read_text()


def test_a_client_that_hangs_up_is_an_aborted_download(gateway: Gateway) -> None:
    """Hanging up after a few MiB: logged aborted with fewer bytes than the file, and the
    download given back."""
    path = gateway.link(max_downloads=1)
    link_id = gateway.link_id(path)
    host, port = urlsplit(gateway.url).hostname, urlsplit(gateway.url).port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = 0
        while received < 4 * 1024 * 1024:
            received += len(sock.recv(1 << 16))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    wait_for(lambda: bool(gateway.service.events(link_id)))
    event = gateway.service.events(link_id)[0]
    assert event.outcome is Outcome.ABORTED and not event.counted
    # What the client's TCP acknowledged: about what it read (its last acknowledgements may
    # never arrive: a reset carries none), and at most its receive buffer more.
    assert received - 128 * 1024 <= event.bytes_sent <= received + 1024 * 1024
    assert gateway.service.link(link_id).link.downloads == 0


def test_a_file_cut_short_while_sent_closes_the_connection(gateway: Gateway) -> None:
    """A file truncated mid-download cannot keep its Content-Length: the connection is
    closed, the client sees a short body, and the download is not counted."""
    short = gateway.file.parent / "short.bin"
    short.write_bytes(os.urandom(SIZE))
    path = gateway.link("short.bin")
    received = 0
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("GET", gateway.url + path, timeout=60) as response:
            for chunk in response.iter_bytes():
                if received == 0:
                    os.truncate(short, 1024 * 1024)
                received += len(chunk)
    assert received < SIZE
    wait_for(lambda: bool(gateway.service.events(gateway.link_id(path))))
    event = gateway.service.events(gateway.link_id(path))[0]
    assert event.outcome is Outcome.ABORTED and not event.counted
    assert "Traceback" not in gateway.log.read_text()


class _CountedWrites:
    """A connection's transport that counts its writes, everything else the real one's."""

    def __init__(self, transport: object, writes: list[bytes]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)  # type: ignore[attr-defined]

    def writelines(self, pieces: list[bytes]) -> None:  # one writev under uvloop
        self._writes.append(b"".join(pieces))
        self._transport.writelines(pieces)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


def test_a_response_head_leaves_with_its_first_body_bytes(tmp_path: Path) -> None:
    """A small response (head, then its body) reaches the socket in one write (a writelines,
    one writev under uvloop), so it is one TCP segment; a head whose app fails before any
    body still reaches the client before the connection closes; and a zero-copy body still
    follows its head."""
    writes: list[bytes] = []

    class Counting(ZeroCopyProtocol):
        def connection_made(self, transport: object) -> None:  # type: ignore[override]
            super().connection_made(_CountedWrites(transport, writes))  # type: ignore[arg-type]

    (tmp_path / "f").write_bytes(b"z" * 10)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        length = b"10" if path == "/zerocopy" else b"5"
        headers = [(b"content-length", length)]
        if path == "/whole":
            head = zerocopy.Head(headers)
            await send({"type": zerocopy.WHOLE, "status": 200, "headers": head, "body": b"hello"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if path == "/fails":
            raise RuntimeError("the app fails after its head")
        if path == "/zerocopy":
            with (tmp_path / "f").open("rb") as file:
                await send({"type": EXTENSION, "file": file, "offset": 0, "count": 10})
            return
        await send({"type": "http.response.body", "body": b"hello"})

    with serving(app, Counting) as url:
        response = httpx.get(url + "/small")
        assert response.content == b"hello"
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert writes[0].endswith(b"\r\n\r\nhello")
        writes.clear()
        assert httpx.get(url + "/whole").content == b"hello"
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        writes.clear()
        assert httpx.get(url + "/zerocopy").content == b"z" * 10  # head, then the kernel's
        writes.clear()
        with socket.create_connection(urlsplit(url)[1].split(":")) as sock:  # type: ignore[arg-type]
            sock.sendall(b"GET /fails HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(10)
            received = b""
            while chunk := sock.recv(65536):  # the server closes the connection
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 5" in received


def _raw(url: str, request: bytes) -> bytes:
    """Everything the server sends for ``request`` on a connection of its own, up to its
    close (each request asks for one)."""
    with socket.create_connection(urlsplit(url)[1].split(":")) as sock:  # type: ignore[arg-type]
        sock.sendall(request)
        sock.settimeout(10)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return re.sub(rb"date: [^\r]*\r\n", b"", received)


def test_headers_written_out_once_leave_as_uvicorn_writes_them() -> None:
    """A response whose headers are a Head (written out once), sent as its two messages or
    as one whole response, leaves byte for byte as the same headers in a list, which
    uvicorn writes itself: with the server's defaults, names lowercased, and Connection:
    close when the client asked for it; with uvicorn's own access log on too; and a kept-
    alive connection's next request is answered after it. A Head refuses headers uvicorn
    would refuse or act on."""
    headers = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"5"), (b"ETag", b'"x"')]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        given = zerocopy.Head(headers) if scope["path"] != "/list" else list(headers)
        if scope["path"] == "/whole":
            assert zerocopy.WHOLE in scope["extensions"]
            await send({"type": zerocopy.WHOLE, "status": 206, "headers": given, "body": b"hello"})
            return
        await send({"type": "http.response.start", "status": 206, "headers": given})
        await send({"type": "http.response.body", "body": b"hello"})

    close = b"Host: x\r\nConnection: close\r\n\r\n"
    for access_log in (False, True):
        with serving(app, ZeroCopyProtocol, access_log=access_log) as url:  # type: ignore[arg-type]
            listed = _raw(url, b"GET /list HTTP/1.1\r\n" + close)
            for path in (b"/head", b"/whole"):
                assert _raw(url, b"GET " + path + b" HTTP/1.1\r\n" + close) == listed
            assert listed.startswith(b"HTTP/1.1 206 Partial Content\r\nserver: uvicorn\r\n")
            assert b"\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n" in listed
            assert listed.endswith(b'etag: "x"\r\nconnection: close\r\n\r\nhello')
            # HTTP/1.0 without keep-alive: closed by uvicorn's rule, said as uvicorn says it.
            old = _raw(url, b"GET /list HTTP/1.0\r\n\r\n")
            assert _raw(url, b"GET /head HTTP/1.0\r\n\r\n") == old
            assert _raw(url, b"GET /whole HTTP/1.0\r\n\r\n") == old

            # Two requests at once on one connection: the second waits for the first's end.
            def twice(path: bytes) -> bytes:
                kept = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                return _raw(url, kept + b"GET " + path + b" HTTP/1.1\r\n" + close)

            both = twice(b"/list")
            assert both.count(b"hello") == 2 and twice(b"/whole") == both
    for bad in (
        [(b"x", b"a\nb"), (b"content-length", b"1")],
        [(b"content-length", b"1"), (b"Connection", b"close")],
        [(b"content-type", b"text/plain")],
    ):
        with pytest.raises(ValueError):
            zerocopy.Head(bad)


class _Transport:
    """A transport that takes writes, or fails the next one as a reset would (it closes)."""

    def __init__(self, closing: bool = False, fails: bool = False) -> None:
        self.closing, self.fails, self.written = closing, fails, b""

    def is_closing(self) -> bool:
        return self.closing

    def writelines(self, data: list[bytes]) -> None:
        if self.fails:
            self.closing = True  # uvloop's fatal error: nothing sent, the transport closing
            return
        self.written += b"".join(data)

    def get_write_buffer_size(self) -> int:
        return 0


@pytest.mark.parametrize(
    ("transport", "dropped"),
    [(_Transport(), False), (_Transport(closing=True), True), (_Transport(fails=True), True)],
    ids=["written", "closing", "failing"],
)
def test_a_gathered_write_says_whether_it_was_dropped(transport: _Transport, dropped: bool) -> None:
    """What the cycle kept for one write reached the transport, or was dropped: it was
    closing already, or the write failed and closed it (gateway.delivery then counts none
    of the body as sent)."""
    gathering = zerocopy._Gathering(transport)  # type: ignore[arg-type]
    gathering.write(b"head")
    gathering.write(b"body")
    assert gathering.release() is transport and gathering.dropped is dropped
    assert transport.written == (b"" if dropped else b"headbody")
