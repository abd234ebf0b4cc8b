"""Helpers of the ``[celery]`` tests: a Redis of the test's own, worker processes, a
recording sink and test configurations."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.testing import LocalServer, Request

DB = 11
WORKER = [sys.executable, "-m", "notifier", "worker", "-v"]
SHARED = ("127.0.0.1", 6379)
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what or condition}")
        time.sleep(0.05)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` of the test's own on a free port; stopped and started again on
    the same port with its data (append-only file, fsync on every write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: answers("127.0.0.1", self.port), 10, "redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def needs_redis_binary() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")


class Sink(LocalServer):
    """Answers every webhook with 200 and records when each arrived, on which path."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.arrivals: list[tuple[float, str, str, str]] = []
        self._seen = threading.Condition()
        super().__init__()

    def handle(self, request: Request) -> Any:
        body = request.json()
        key = request.header("idempotency-key") or ""
        with self._seen:
            self.arrivals.append((time.monotonic(), request.path, body.get("title", ""), key))
            self._seen.notify_all()
        if self.status != 200:
            from notifier.testing import Response

            return Response.from_json({"error": "refused"}, self.status)
        return {"ok": True}

    def count(self, path: str | None = None) -> int:
        with self._seen:
            return sum(1 for a in self.arrivals if path is None or a[1] == path)

    def wait_count(self, n: int, timeout: float = 60.0, path: str | None = None) -> None:
        end = time.monotonic() + timeout
        with self._seen:
            while sum(1 for a in self.arrivals if path is None or a[1] == path) < n:
                left = end - time.monotonic()
                if left <= 0:
                    got = sum(1 for a in self.arrivals if path is None or a[1] == path)
                    pytest.fail(f"the sink got {got} of {n} deliveries in {timeout:g}s")
                self._seen.wait(left)


class Workers:
    """``notifier worker`` processes for one configuration file."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, count: int = 1, concurrency: int = 4, *, celery_command: bool = False
    ) -> list[subprocess.Popen[bytes]]:
        """Start ``count`` workers: ``notifier worker``, or with ``celery_command``
        Celery's own ``celery -A notifier.celery worker`` on the thread pool."""
        started = []
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFIER_CONFIG": str(self.config)}
        command = [*WORKER, "--config", str(self.config), "--concurrency", str(concurrency)]
        if celery_command:
            queue = tomllib.loads(self.config.read_text())["celery"]["queue"]
            command = [sys.executable, "-m", "celery", "-A", "notifier.celery", "worker"]
            command += ["--pool", "threads", "--concurrency", str(concurrency), "-Q", queue]
            command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        for _ in range(count):
            log = self.logs / f"worker-{len(self.processes)}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    env=env,
                )
            process.log = log  # type: ignore[attr-defined]
            self.processes.append(process)
            started.append(process)
        for process in started:
            wait_for(lambda p=process: self._ready(p), 30, "the worker to be ready")
        return started

    @staticmethod
    def _ready(process: subprocess.Popen[bytes]) -> bool:
        text = process.log.read_text(errors="replace")  # type: ignore[attr-defined]
        if process.poll() is not None:
            pytest.fail(f"the worker exited {process.returncode}:\n{text}")
        return " ready." in text

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def log(self) -> str:
        return "\n".join(
            p.log.read_text(errors="replace")  # type: ignore[attr-defined]
            for p in self.processes
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def celery_config(
    path: Path,
    broker: str,
    channels: dict[str, str],
    *,
    extra_channel: str = "",
    celery: str = "",
) -> Path:
    """A configuration with webhook ``channels`` (name: url), routed all to every one."""
    # A short delivery_timeout keeps the claim a killed worker leaves behind short.
    text = "[dispatcher]\ndelivery_timeout = 5\n\n"
    for name, url in channels.items():
        text += f'[channels.{name}]\nkind = "webhook"\nurl = "{url}"\n{extra_channel}\n'
    names = ", ".join(f'"{n}"' for n in channels)
    text += f"[[routes]]\nchannels = [{names}]\n\n"
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    text += (
        f'[celery]\nbroker = "{broker}"\nqueue = "{queue}"\n'
        "visibility_timeout = 3\nlost_after = 15\n"
        f"backoff_initial = 0.1\nbackoff_max = 0.5\n{celery}\n"
    )
    path.write_text(text)
    return path
