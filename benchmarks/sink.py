"""A local HTTP sink that answers like a provider, run in its own process.

Every request gets ``{"errcode":0,"errmsg":"ok"}`` (HTTP 200, HTTP/1.1 keep-alive), after
an optional fixed added latency. ``GET /_stats`` answers the sink's request count and CPU
seconds so far, so a benchmark can show the sink was not the bottleneck.

It is not :class:`notifier.testing.LocalServer`: that server parses headers with the
``email`` package and records every request, which costs it about a third of a
millisecond per request, as much as the client overhead being measured. This one parses
only the request line and ``Content-Length``, and runs in a separate process so it never
competes with the client for the GIL. Run it by hand with::

    python benchmarks/sink.py --latency 0.02      # prints the port, serves until stdin closes
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

ANSWER = b'{"errcode":0,"errmsg":"ok"}'
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: "
RESPONSE = _HEAD + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0


def _handler(latency: float, counter: _Counter) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def setup(self) -> None:
            # Head and body go out in one write, but the client's two writes (headers,
            # then body) must not wait for a delayed ACK either.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()
            with counter.lock:
                counter.connections += 1

        def handle(self) -> None:
            reader, sock = self.rfile, self.request
            while True:
                line = reader.readline(65537)
                if not line:
                    return
                length, close = 0, False
                while True:
                    header = reader.readline(65537)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                if length:
                    reader.read(length)
                if line.startswith(b"GET /_stats"):
                    sock.sendall(_stats(counter))
                    continue
                with counter.lock:
                    counter.requests += 1
                if latency:
                    time.sleep(latency)
                sock.sendall(RESPONSE)
                if close:
                    return

    return Handler


def _stats(counter: _Counter) -> bytes:
    with counter.lock:
        data = {
            "requests": counter.requests,
            "connections": counter.connections,
            "cpu_seconds": time.process_time(),
        }
    body = json.dumps(data).encode()
    return _HEAD + str(len(body)).encode() + b"\r\n\r\n" + body


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # 80+ clients connect at once in the fan-out scenario


def serve(latency: float) -> None:
    """Serve on an ephemeral port; print it; stop when stdin closes."""
    server = _Server(("127.0.0.1", 0), _handler(latency, _Counter()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


class Sink:
    """The sink in a child process; use as a context manager.

    :param latency: seconds added before every answer.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--latency", repr(self.latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def url(self, path: str = "hook") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stats(self) -> dict[str, float]:
        """Requests answered and CPU seconds used so far (one short-lived connection)."""
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: sink\r\nConnection: close\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
                if b"}" in chunk:
                    break
        return json.loads(raw.partition(b"\r\n\r\n")[2])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per answer")
    serve(parser.parse_args().latency)
