"""Serving a ``notifier serve`` application on a real local port for tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifier.server import create_app
from notifier.server.app import NotifierApp
from notifier.server.serving import run_until, waitress_server


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under waitress on 127.0.0.1; yields its base URL."""
    server = waitress_server(app, "127.0.0.1", 0, threads=4)
    host, port = server.socket.getsockname()[:2]
    stop = threading.Event()
    thread = threading.Thread(target=run_until, args=(server, stop), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        stop.set()
        thread.join(timeout=10)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(body, encoding="utf-8")
    return path


BASE = """
[channels.audit]
kind = "jsonl"
path = "audit.jsonl"

[channels.ops]
kind = "jsonl"
path = "ops.jsonl"

[[routes]]
channels = ["audit"]
continue = true

[[routes]]
channels = ["ops"]
labels = { team = "ops" }

[outbox]
path = "outbox.db"
busy_timeout = 0.2

[server]
tokens = ["token-one", { env = "SERVE_TOKEN" }]
users = { prometheus = "pass-word" }
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[NotifierApp]:
    """An app that accepts only (nothing delivers unless a test drains the outbox)."""
    config = write_config(tmp_path, BASE)
    made = create_app(config, env={"SERVE_TOKEN": "token-two"}, deliver=False)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def url(app: NotifierApp) -> Iterator[str]:
    with serving(app) as base:
        yield base
