"""Providers that misbehave: answers without end, answers trickled a byte at a time,
certificates nobody signed, error bodies, and failures below HTTP in plain words."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier import deadline
from notifier.errors import ProviderError, TransportError
from notifier.http import Endpoint, HttpClient, RetryPolicy
from notifier.testing import LocalServer, Response

SEND = Endpoint("send", "POST", "send")
ROOT = Path(__file__).parents[2]


def _client(root: str, **overrides: object) -> HttpClient:
    kwargs: dict[str, object] = {"retry": RetryPolicy(max_attempts=1), "timeout": (1.0, 2.0)}
    kwargs.update(overrides)
    return HttpClient(root, **kwargs)  # type: ignore[arg-type]


# -- answers without end -------------------------------------------------------------------


def _endless(server: LocalServer, chunk: bytes, pause: float = 0.0, most: int = 64 << 20):
    """Chunks until the client goes away, or ``most`` bytes, so a client that never
    stops reading fails the test instead of hanging it."""

    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < most:
            if pause and server.pause(pause):
                return
            sent += len(chunk)
            yield chunk

    return chunks()


def test_an_answer_without_end_is_refused_at_max_response_bytes_in_bounded_memory():
    with LocalServer() as server:
        server.route("POST", "/send", lambda r: Response.streamed(_endless(server, b"x" * 65536)))
        client = _client(server.url, max_response_bytes=256 * 1024)
        port = server.port
        tracemalloc.start()
        try:
            with pytest.raises(ProviderError) as caught:
                client.call(SEND, json={})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert "is larger than 262144 bytes (max_response_bytes)" in str(caught.value)
    assert f"answer from 127.0.0.1:{port} (HTTP 200)" in str(caught.value)
    assert caught.value.retryable is False
    assert peak < 4 << 20  # the 64 MiB the server had to give were not read


def test_an_answer_declaring_a_length_over_the_cap_is_refused_before_reading_it():
    with LocalServer() as server:
        server.route("POST", "/send", lambda r: Response(200, b"{}" + b" " * 5000))
        with pytest.raises(ProviderError, match="larger than 4096 bytes"):
            _client(server.url, max_response_bytes=4096).call(SEND, json={})
        # The connection was not handed back half-read: the next call still works.
        server.route("POST", "/send", lambda r: {"ok": True})
        assert _client(server.url).call(SEND, json={}).data == {"ok": True}


def test_an_answer_within_the_cap_is_read_whole():
    with LocalServer() as server:
        server.route("POST", "/send", lambda r: Response.streamed(iter([b'{"ok": ', b"true}"])))
        assert _client(server.url, max_response_bytes=1024).call(SEND, json={}).data == {"ok": True}


# -- answers trickled a byte at a time ------------------------------------------------------


def _trickling(server: LocalServer) -> None:
    # Faster than any read timeout here, so only a bound on the total time ends it.
    server.route(
        "POST",
        "/send",
        lambda r: Response.streamed(_endless(server, b" ", pause=0.05, most=400)),
    )


def test_a_trickled_answer_ends_at_the_deliverys_deadline():
    with LocalServer() as server:
        _trickling(server)
        client = _client(server.url, timeout=(1.0, 30.0))
        started = time.monotonic()
        with deadline.within(0.5), pytest.raises(TransportError) as caught:
            client.call(SEND, json={})
        elapsed = time.monotonic() - started
    assert elapsed < 3  # the server would have trickled for 20 s
    assert "timed out after 0.5 s waiting for the answer from 127.0.0.1:" in str(caught.value)
    assert caught.value.retryable is True and caught.value.sent is True


def test_a_trickled_answer_ends_after_connect_plus_read_timeout_without_a_deadline():
    with LocalServer() as server:
        _trickling(server)
        client = _client(server.url, timeout=(0.2, 0.5))
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"timed out after 0\.7 s"):
            client.call(SEND, json={})
    assert time.monotonic() - started < 3


class _TrickledHeaders(socketserver.ThreadingTCPServer):
    """Sends a status line and headers one byte at a time, never finishing them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), self._Handler)

    class _Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400:
                if self.server.stopping.wait(0.05):  # type: ignore[attr-defined]
                    return
                with contextlib.suppress(OSError):
                    self.request.sendall(bytes([byte]))


def test_trickled_headers_are_bounded_by_the_attempts_total_time_too():
    server = _TrickledHeaders()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        client = _client(f"http://127.0.0.1:{server.server_address[1]}", timeout=(0.2, 0.5))
        started = time.monotonic()
        with pytest.raises(TransportError, match="timed out after"):
            client.call(SEND, json={})
        assert time.monotonic() - started < 3
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_the_send_command_exits_when_its_delivery_to_a_trickling_provider_times_out(
    tmp_path: Path,
):
    with LocalServer() as server:
        _trickling(server)
        config = tmp_path / "hook.toml"
        config.write_text(
            f"""
[channels.hook]
kind = "webhook"
url = "{server.url}/send"
max_attempts = 1
delivery_timeout = 0.5
"""
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "notifier", "send", "--config", str(config), "--title", "t"],
            capture_output=True,
            text=True,
            env=env,
            timeout=15,  # the trickle lasts 20 s: a process held by it fails here
            cwd=tmp_path,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 10
    assert "timed out" in result.stdout + result.stderr


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no authority signed."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is not None:
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cert, key
    pytest.importorskip("cryptography", reason="neither openssl nor cryptography to make a cert")
    return _cert_with_cryptography(cert, key)


def _cert_with_cryptography(cert: Path, key: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def https_server(self_signed: tuple[Path, Path]) -> Iterator[LocalServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    with LocalServer(tls=context) as server:
        server.route("POST", "/send", lambda r: {"ok": True})
        yield server


def _assert_tls_refused(caught: pytest.ExceptionInfo[TransportError], port: int) -> None:
    text = str(caught.value)
    assert text.startswith(f"HTTP client, send: TLS certificate verification failed for "
                           f"127.0.0.1:{port}")  # fmt: skip
    assert "self-signed" in text
    assert "\n" not in text and "HTTPSConnectionPool" not in text
    assert caught.value.retryable is False
    assert caught.value.sent is False
    assert caught.value.attempts == 1


def test_a_self_signed_certificate_is_a_permanent_one_line_tls_error(https_server):
    with pytest.raises(TransportError) as caught:
        _client(https_server.url, retry=RetryPolicy(max_attempts=3)).call(SEND, json={})
    _assert_tls_refused(caught, https_server.port)
    assert https_server.requests == []


def test_the_certificate_is_trusted_when_its_ca_bundle_is_configured(
    https_server, self_signed, monkeypatch
):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self_signed[0]))
    assert _client(https_server.url).call(SEND, json={}).data == {"ok": True}


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that only tunnels (``CONNECT``), as HTTPS goes through one."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        super().__init__(("127.0.0.1", 0), self._Handler)

    class _Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode("latin-1").split()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            if len(line) < 2 or line[0] != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            self.server.tunnels.append(line[1])  # type: ignore[attr-defined]
            host, port = line[1].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    while True:
        ready, _, _ = select.select([a, b], [], [], 5)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


def test_a_self_signed_certificate_behind_a_connect_proxy_is_the_same_tls_error(
    https_server, monkeypatch
):
    proxy = _ConnectProxy()
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        for name in ("NO_PROXY", "no_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        client = _client(https_server.url)
        assert client.proxies  # the request really goes through the proxy
        with pytest.raises(TransportError) as caught:
            client.call(SEND, json={})
    finally:
        proxy.shutdown()
        proxy.server_close()
    _assert_tls_refused(caught, https_server.port)
    assert proxy.tunnels == [f"127.0.0.1:{https_server.port}"]


class _TlsConnectProxy(_ConnectProxy):
    """The same proxy reached over TLS (``HTTPS_PROXY=https://...``)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__()

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


def test_a_self_signed_certificate_on_an_https_proxy_is_a_permanent_tls_error_naming_it(
    https_server, self_signed, monkeypatch
):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    proxy = _TlsConnectProxy(context)
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    port = proxy.server_address[1]
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"https://127.0.0.1:{port}")
        for name in ("NO_PROXY", "no_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        client = _client(https_server.url, retry=RetryPolicy(max_attempts=3))
        with pytest.raises(TransportError) as caught:
            client.call(SEND, json={})
    finally:
        proxy.shutdown()
        proxy.server_close()
    text = str(caught.value)
    assert text.startswith(
        f"HTTP client, send: TLS certificate verification failed for proxy 127.0.0.1:{port}"
    ), text
    assert "self-signed" in text
    assert "\n" not in text and "CERTIFICATE_VERIFY_FAILED" not in text
    assert caught.value.retryable is False
    assert caught.value.sent is False
    assert caught.value.attempts == 1
    assert proxy.tunnels == [] and https_server.requests == []


# -- the provider's own words ---------------------------------------------------------------


def test_an_error_answer_shows_the_providers_own_message():
    with LocalServer() as server:
        server.route(
            "POST",
            "/send",
            lambda r: Response.from_json({"error": {"message": "message too long"}}, 400),
        )
        with pytest.raises(ProviderError) as caught:
            _client(server.url).call(SEND, json={})
    assert str(caught.value) == "HTTP client, send: HTTP 400 Bad Request: message too long"
    assert caught.value.provider_message == "message too long"
    assert caught.value.code == 400 and caught.value.retryable is False


def test_an_error_body_is_shown_bounded_on_one_line_and_redacted():
    from notifier.redact import register

    secret = "sk-live-0123456789abcdef"
    register(secret)
    text = f"bad token {secret}\n\x1b[31mred\x1b[0m " + "y" * 1000
    with LocalServer() as server:
        server.route("POST", "/send", lambda r: Response.text(text, 422))
        with pytest.raises(ProviderError) as caught:
            _client(server.url).call(SEND, json={})
    message = str(caught.value)
    assert message.startswith("HTTP client, send: HTTP 422 Unprocessable Entity: bad token ***")
    assert secret not in message and "\x1b" not in message and "\n" not in message
    assert len(caught.value.provider_message) == 200
    assert caught.value.provider_message.endswith("...")


def test_an_html_error_page_is_shown_by_its_title():
    page = b"<html><head><title>502 Bad Gateway</title></head><body><hr>nginx</body></html>"
    with LocalServer() as server:
        server.route(
            "POST",
            "/send",
            lambda r: Response(502, page, {"Content-Type": "text/html"}),
        )
        with pytest.raises(ProviderError) as caught:
            _client(server.url).call(SEND, json={})
    assert str(caught.value) == "HTTP client, send: HTTP 502 Bad Gateway: 502 Bad Gateway"
    assert caught.value.retryable is True


# -- failures below HTTP, in plain words ----------------------------------------------------


def test_a_refused_connection_says_so_and_names_the_address():
    with LocalServer() as gone:
        port = gone.port
    with pytest.raises(TransportError) as caught:
        _client(f"http://127.0.0.1:{port}").call(SEND, json={})
    assert str(caught.value) == f"HTTP client, send: connection refused by 127.0.0.1:{port}"
    assert caught.value.__cause__ is not None  # the low-level cause is kept, scrubbed


def test_an_unresolvable_name_says_so():
    with pytest.raises(TransportError) as caught:
        _client("http://no-such-host.invalid").call(SEND, json={})
    assert str(caught.value) == "HTTP client, send: name no-such-host.invalid not resolved"
    assert caught.value.sent is False


def test_a_connect_timeout_names_the_host_and_the_seconds():
    # A listener that never accepts, its backlog full: the next SYN goes unanswered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            with pytest.raises(TransportError) as caught:
                _client(f"http://127.0.0.1:{port}", timeout=(0.2, 1.0)).call(SEND, json={})
        finally:
            for filler in fillers:
                filler.close()
    assert str(caught.value) == (
        f"HTTP client, send: timed out after 0.2 s connecting to 127.0.0.1:{port}"
    )
    assert caught.value.sent is False and caught.value.retryable is True
