"""The real Prometheus Alertmanager -> ``notifier serve`` -> the fake WeCom robot.

Alertmanager and ``serve`` are real processes, so this test waits on them by polling
what they did (the robot's messages, the outbox file) against a deadline. ``.ci/run``
installs Alertmanager (Debian ``prometheus-alertmanager``) where it can.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from notifier_wework.testing import FakeWeCom

from tests.server.test_serve_cli import free_port, wait_listening

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
KEY = "fake-robot-key-0001"
TOKEN = "e2e-bearer-token"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BINARY is None,
        reason="Prometheus Alertmanager is not installed (apt-get install "
        "prometheus-alertmanager; .ci/run does it when run as root)",
    ),
]


def until(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.2)


class Serve:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notifier", "serve", "--config", str(self.config)],
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.config.parent,
        )
        wait_listening(self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom(robot_rate=10_000) as fake:
        yield fake


@pytest.fixture
def setup(tmp_path: Path, wecom: FakeWeCom) -> Iterator[tuple[Serve, str]]:
    serve_port, am_port = free_port(), free_port()
    config = tmp_path / "notifier.toml"
    config.write_text(
        f"""
[channels.robot]
kind = "wework-robot"
key = "{KEY}"
api_root = "{wecom.api_root}"
msgtype = "markdown"
rate_limit = {{ count = 10000, per = 60 }}

[outbox]
path = "outbox.db"

[server]
listen = "127.0.0.1:{serve_port}"
tokens = [{{ env = "E2E_TOKEN" }}]
""",
        encoding="utf-8",
    )
    os.environ["E2E_TOKEN"] = TOKEN
    (tmp_path / "am.yml").write_text(
        f"""
route:
  receiver: notifier
  group_by: [group]
  group_wait: 2s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: notifier
    webhook_configs:
      - url: http://127.0.0.1:{serve_port}/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {TOKEN}
""",
        encoding="utf-8",
    )
    serve = Serve(config)
    serve.start()
    am = subprocess.Popen(
        [str(BINARY), f"--config.file={tmp_path / 'am.yml'}",
         f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "am.log", "w"),  # noqa: SIM115
    )  # fmt: skip
    am_url = f"http://127.0.0.1:{am_port}"

    def ready() -> bool:
        try:
            return requests.get(am_url + "/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        until(ready, "Alertmanager to start")
        yield serve, am_url
    finally:
        am.terminate()
        am.wait(timeout=30)
        serve.stop()
        os.environ.pop("E2E_TOKEN", None)


def alerts(batch: str, groups: range, per_group: int, *, resolved: bool = False) -> list[dict]:
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)
    return [
        {
            "labels": {"alertname": f"Storm{batch}", "group": f"g{g}", "instance": f"i{g}-{n}",
                       "severity": "critical"},
            "annotations": {"summary": f"alert {batch}-{g}-{n}"},
            "startsAt": (now - timedelta(minutes=5)).isoformat(),
            "endsAt": ends.isoformat(),
            "generatorURL": "http://prometheus:9090/graph",
        }
        for g in groups
        for n in range(per_group)
    ]  # fmt: skip


LINE = re.compile(r"^\[(FIRING|RESOLVED)\] critical: alert (\S+) ", re.MULTILINE)


def seen(wecom: FakeWeCom) -> Counter[tuple[str, str]]:
    """(state, alert) of every alert line in every message the robot got, counted."""
    lines = Counter()
    for message in wecom.robot_messages(KEY):
        lines.update((state, name) for state, name in LINE.findall(message.content or ""))
    return lines


def test_alertmanager_groups_resolves_and_a_crash_loses_nothing(setup, wecom, tmp_path):
    serve, am = setup
    post = lambda batch: requests.post(am + "/api/v2/alerts", json=batch, timeout=10)  # noqa: E731

    # 50 alerts in 5 groups arrive grouped: each message holds the alerts of one group.
    # (Alertmanager may flush a group before all of its alerts joined it, then send the
    # whole group again: a group has one message, or a few as it grows.)
    assert post(alerts("a", range(5), 10)).status_code == 200
    names = {f"a-{g}-{n}" for g in range(5) for n in range(10)}
    until(lambda: {n for s, n in seen(wecom) if s == "FIRING"} >= names, "the first storm")
    first = [m.content or "" for m in wecom.robot_messages(KEY)]
    groups = [set(re.findall(r"alert a-(\d)-", m)) for m in first]
    assert all(len(g) == 1 for g in groups), groups
    assert 5 <= len(first) <= 10
    assert sum("10 firing, 0 resolved" in m for m in first) == 5

    # Resolving them sends resolved messages.
    assert post(alerts("a", range(5), 10, resolved=True)).status_code == 200
    until(lambda: {n for s, n in seen(wecom) if s == "RESOLVED"} >= names, "the resolves")
    assert all("RESOLVED" in m.content for m in wecom.robot_messages(KEY)[len(first) :])

    # A storm during which serve is killed -9 and restarted: nothing is lost.
    before = len(wecom.robot_messages(KEY))
    storm = {f"b-{g}-{n}" for g in range(5, 15) for n in range(10)}
    with sqlite3.connect(tmp_path / "outbox.db") as conn:
        held = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    assert post(alerts("b", range(5, 15), 10)).status_code == 200

    def accepted_some() -> bool:
        with sqlite3.connect(tmp_path / "outbox.db") as conn:
            return conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] > held

    until(accepted_some, "serve to accept part of the storm", 30)
    serve.kill()
    serve.start()
    until(lambda: {n for s, n in seen(wecom) if s == "FIRING"} >= storm, "the storm after a crash")
    # The same message twice only from the crash window: at most the one delivery in
    # flight at the kill (see docs/serve.md). Alertmanager's own re-sends of a grown
    # group differ in content and are not duplicates.
    contents = [m.content for m in wecom.robot_messages(KEY)[before:]]
    assert len(contents) - len(set(contents)) <= 1, contents
