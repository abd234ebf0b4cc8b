"""A real HTTP server on 127.0.0.1 for tests, meant to be subclassed by fake providers.

:class:`LocalServer` runs a ``ThreadingHTTPServer`` on an ephemeral port in a daemon
thread, speaks HTTP/1.1 with keep-alive (so connection reuse is observable), records every
request, counts TCP connections, and can be scripted to misbehave (errors, ``Retry-After``,
dropped connections, slow answers). It knows nothing about any provider.

A fake provider subclasses it and registers routes in :meth:`LocalServer.setup`::

    class FakeRobot(LocalServer):
        def setup(self) -> None:
            self.sent: list[dict] = []
            self.route("POST", "/webhook/send", self.send)

        def send(self, request: Request) -> Response:
            self.sent.append(request.json())
            return Response.from_json({"errcode": 0, "errmsg": "ok"})

    with FakeRobot() as server:
        requests.post(server.root + "webhook/send?key=k", json={"msgtype": "text"})
        assert server.requests[0].query["key"] == "k"
        server.fail_next(2, status=503)        # the next two answers are 503
        server.drop_next()                     # then one connection closed without answer

A handler may return a :class:`Response`, a ``dict``/``list`` (sent as JSON with status
200) or ``None`` (an empty 200). Requests no route matches go to :meth:`LocalServer.handle`,
which answers 404 unless a subclass overrides it. A handler that raises answers 500.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, overload
from urllib.parse import parse_qs, urlsplit

import attrs

__all__ = ["Fault", "Handler", "LocalServer", "Request", "Response"]


@attrs.frozen
class Request:
    """One request as the server received it.

    :param path: the path without the query string.
    :param query: each query parameter's last value; ``query_all`` keeps every value.
    :param headers: header names lower-cased.
    :param connection: the number of the TCP connection it arrived on (1, 2, ...).
    """

    method: str
    path: str
    query: Mapping[str, str]
    query_all: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    connection: int

    @overload
    def header(self, name: str) -> str | None: ...
    @overload
    def header(self, name: str, default: str) -> str: ...
    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as UTF-8 JSON (``None`` for an empty body)."""
        return jsonlib.loads(self.body.decode("utf-8")) if self.body else None


@attrs.frozen
class Response:
    """What a handler answers. Content-Length is always set from ``body``, unless the
    answer is :meth:`streamed`."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    #: sent one chunk at a time with ``Transfer-Encoding: chunked`` instead of ``body``
    chunks: Iterable[bytes] | None = None

    @classmethod
    def streamed(
        cls, chunks: Iterable[bytes], status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """An answer whose body is written chunk by chunk as ``chunks`` yields them, each
        flushed at once: a body without end, or one trickled a byte at a time (pace it
        with :meth:`LocalServer.pause`). Writing stops when the client goes away or the
        server stops."""
        return cls(status, b"", dict(headers or {}), chunks)

    @classmethod
    def from_json(
        cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        # ensure_ascii=False like real Chinese providers, so clients must decode UTF-8.
        body = jsonlib.dumps(data, ensure_ascii=False).encode("utf-8")
        content_type = {"Content-Type": "application/json; charset=utf-8"}
        return cls(status, body, {**content_type, **(headers or {})})

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        content_type = {"Content-Type": "text/plain; charset=utf-8"}
        return cls(status, text.encode("utf-8"), {**content_type, **(headers or {})})


Handler = Callable[[Request], "Response | dict[str, Any] | list[Any] | None"]


@attrs.frozen
class Fault:
    """One scripted misbehaviour, applied to the next request whose path matches.

    :param kind: ``"status"`` (answer ``status``, optionally with ``Retry-After``),
        ``"drop"`` (read the request, then close the connection without answering) or
        ``"delay"`` (wait ``delay`` seconds, then answer normally).
    :param path: only requests to this path consume the fault; ``None`` matches any.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(("status", "drop", "delay")))
    status: int = 503
    retry_after: float | str | None = None
    delay: float = 0.0
    body: bytes = b""
    path: str | None = None


class LocalServer:
    """A threaded HTTP/1.1 server on 127.0.0.1; use as a context manager.

    Subclass and override :meth:`setup` to register routes, or call :meth:`route` on an
    instance. Every public method is safe to call from any thread.
    """

    #: seconds an idle keep-alive connection stays open on the server side
    idle_timeout: float = 30.0

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        """:param tls: a server-side context (with its certificate loaded) to serve
        HTTPS instead of HTTP."""
        self.tls = tls
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Handler] = {}
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._connections = 0
        self._open_sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.setup()

    # -- extension points ---------------------------------------------------------------

    def setup(self) -> None:
        """Register routes here in a subclass; called once from ``__init__``."""

    def handle(self, request: Request) -> Response | dict[str, Any] | list[Any] | None:
        """Answer a request no route matches; a 404 unless a subclass says otherwise."""
        return Response.from_json({"error": f"no route for {request.method} {request.path}"}, 404)

    # -- configuration ------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for ``method path`` (exact path, no query); usable as a
        decorator when ``handler`` is omitted. A later registration replaces an earlier one."""

        def register(func: Handler) -> Handler:
            with self._lock:
                self._routes[(method.upper(), path)] = func
            return func

        return register if handler is None else register(handler)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        retry_after: float | str | None = None,
        body: bytes = b"",
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` instead of routing."""
        fault = Fault("status", status=status, retry_after=retry_after, body=body, path=path)
        self._push(count, fault)

    def drop_next(self, count: int = 1, *, path: str | None = None) -> None:
        """Read the next ``count`` matching requests fully, then close without answering,
        like a proxy or a crashed backend after the request was received."""
        self._push(count, Fault("drop", path=path))

    def delay_next(self, seconds: float, count: int = 1, *, path: str | None = None) -> None:
        """Hold the next ``count`` matching requests ``seconds`` before answering.
        :meth:`stop` cuts the wait short, so a test never hangs on it."""
        self._push(count, Fault("delay", delay=seconds, path=path))

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` on a handler's thread, or less if the server stops; true when
        it is stopping. Paces a :meth:`Response.streamed` body without outliving the
        server."""
        return self._stopping.wait(seconds)

    def _push(self, count: int, fault: Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- observations -------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    @property
    def connections(self) -> int:
        """How many TCP connections the server has accepted."""
        with self._lock:
            return self._connections

    def reset(self) -> None:
        """Forget recorded requests, connection counts and pending faults (routes stay)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._connections = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` when serving TLS; no trailing slash)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT/``, to join relative paths onto."""
        return self.url + "/"

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _make_handler(self))
        if self.tls is not None:
            # The handshake runs on the connection's thread, at its first read, so a
            # client that rejects the certificate never stalls the accepting thread.
            server.socket = self.tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake delayed handlers and close open keep-alive connections."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            sockets = list(self._open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request processing (runs on the connection's thread) ----------------------------

    def _connected(self, sock: socket.socket) -> int:
        with self._lock:
            self._connections += 1
            self._open_sockets.add(sock)
            return self._connections

    def _disconnected(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    def _receive(self, request: Request) -> tuple[Fault | None, Handler | None]:
        with self._lock:
            self._requests.append(request)
            fault = None
            for i, candidate in enumerate(self._faults):
                if candidate.path is None or candidate.path == request.path:
                    fault = self._faults.pop(i)
                    break
            return fault, self._routes.get((request.method, request.path))

    def _answer(self, request: Request, handler: Handler | None) -> Response:
        try:
            result = handler(request) if handler is not None else self.handle(request)
        except Exception as exc:  # the test sees a 500 and the error text, not a hang
            return Response.text(f"handler error: {exc!r}", 500)
        if result is None:
            return Response()
        if isinstance(result, Response):
            return result
        return Response.from_json(result)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck connection thread never blocks interpreter exit
    # socketserver's default backlog of 5 drops SYNs when 32 clients connect at once,
    # which shows up as one-second connect timeouts in concurrency tests.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that hung up or refused our certificate: not a server bug
        super().handle_error(request, client_address)


def _make_handler(owner: LocalServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
        timeout = owner.idle_timeout

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without NODELAY, Nagle holds the
            # body until the client's delayed ACK (~40 ms per request on Linux).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connection_number = owner._connected(self.connection)

        def finish(self) -> None:
            with contextlib.suppress(OSError):
                super().finish()
            owner._disconnected(self.connection)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read server.requests; stderr noise helps nobody

        def _dispatch(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query_all = parse_qs(split.query, keep_blank_values=True)
            request = Request(
                method=self.command,
                path=split.path,
                query={k: v[-1] for k, v in query_all.items()},
                query_all=query_all,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                connection=self.connection_number,
            )
            fault, handler = owner._receive(request)
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "delay" and owner._stopping.wait(fault.delay):
                self.close_connection = True  # stopped while waiting: give up quietly
                return
            if fault is not None and fault.kind == "status":
                headers = {"Content-Type": "text/plain"}
                if fault.retry_after is not None:
                    headers["Retry-After"] = _retry_after_value(fault.retry_after)
                response = Response(fault.status, fault.body, headers)
            else:
                response = owner._answer(request, handler)
            self._write(response)

        def _write(self, response: Response) -> None:
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding"):
                        self.send_header(name, value)
                if response.chunks is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    self._write_chunks(response.chunks)
                    return
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                self.wfile.flush()
            except OSError:  # the client gave up (timeout) before we answered
                self.close_connection = True

        def _write_chunks(self, chunks: Iterable[bytes]) -> None:
            for chunk in chunks:
                if owner._stopping.is_set():
                    self.close_connection = True  # an unfinished body: never reuse
                    return
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    return _Handler


def _retry_after_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def http_date(timestamp: float) -> str:
    """``timestamp`` as an HTTP date, for ``Retry-After`` in date form."""
    return formatdate(timestamp, usegmt=True)
