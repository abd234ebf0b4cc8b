"""``notifier serve`` as a process: it listens, accepts, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.server.samples import am_alert, notification


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "notifier", "serve", "--config", str(config), *args],
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


def wait_listening(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        if "listening on" in line:
            return line.split("listening on ")[1].split(",")[0]
    raise AssertionError(f"serve exited {process.wait()} before listening")


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_and_leaves_the_queue(tmp_path):
    port = free_port()
    config = tmp_path / "notifier.toml"
    # A channel whose provider never answers: its delivery stays queued.
    config.write_text(
        f"""
[channels.hook]
kind = "webhook"
url = "http://127.0.0.1:{free_port()}/hook"
[outbox]
path = "outbox.db"
[server]
listen = "127.0.0.1:{port}"
""",
        encoding="utf-8",
    )
    process = start(config)
    try:
        base = wait_listening(process)
        # A request in flight: headers sent, body not yet.
        body = json.dumps(notification([am_alert(1)])).encode()
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(
            b"POST /api/v1/alertmanager HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        assert requests.get(base + "/healthz", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        slow.sendall(body[10:])
        answer = slow.recv(4096)
        slow.close()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        states = conn.execute("SELECT channel, state FROM deliveries").fetchall()
    assert len(states) == 1 and states[0][0] == "hook" and states[0][1] != "delivered"
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/healthz", timeout=2)


@pytest.mark.slow
def test_without_an_outbox_table_it_says_which_outbox_it_uses(tmp_path):
    config = tmp_path / "notifier.toml"
    config.write_text('[channels.c]\nkind = "console"\n', encoding="utf-8")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier", "serve", "--config", str(config),
         "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert str(tmp_path / "data" / "notifier" / "outbox.db") + " (default, no [outbox])" in first
    assert (tmp_path / "data" / "notifier" / "outbox.db").exists()


def test_a_public_address_without_credentials_is_refused(tmp_path):
    config = tmp_path / "notifier.toml"
    config.write_text('[channels.c]\nkind = "console"\n[outbox]\npath = "o.db"\n')
    done = subprocess.run(
        [sys.executable, "-m", "notifier", "serve", "--config", str(config),
         "--listen", "0.0.0.0:9095"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "needs tokens or users" in done.stderr


@pytest.mark.slow
def test_no_deliver_accepts_and_leaves_delivery_to_a_worker(tmp_path):
    config = tmp_path / "notifier.toml"
    config.write_text(
        '[channels.audit]\nkind = "jsonl"\npath = "audit.jsonl"\n'
        f'[outbox]\npath = "outbox.db"\n[server]\nlisten = "127.0.0.1:{free_port()}"\n',
        encoding="utf-8",
    )
    process = start(config, "--no-deliver")
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        base = first.split("listening on ")[1].split(",")[0]
        body = notification([am_alert(1), am_alert(2)])
        answer = requests.post(base + "/api/v1/alertmanager", json=body, timeout=10)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert answer.status_code == 200, answer.text
    assert first.rstrip().endswith("; not delivering")
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        assert conn.execute("SELECT state FROM deliveries").fetchall() == [("pending",)]
    assert not (tmp_path / "audit.jsonl").exists()
    worker = subprocess.run(
        [sys.executable, "-m", "notifier", "worker", "--config", str(config), "--once"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and "2 firing" in lines[0]
