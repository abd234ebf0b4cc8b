"""``notifier serve``'s application under gunicorn, as docs/serve.md runs it: several
worker processes share one outbox, each delivery is made once, and ``/metrics`` adds up
every process's counters and reads the outbox's state from the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.server.samples import am_alert, notification

pytest.importorskip("gunicorn", reason="gunicorn is not installed (pip install gunicorn)")

WORKERS = 2
NOTIFICATIONS = 40
TOKEN = {"Authorization": "Bearer gunicorn-token"}
CONFIG = """
[channels.audit]
kind = "jsonl"
path = "audit.jsonl"

[outbox]
path = "outbox.db"

[server]
tokens = ["gunicorn-token"]
"""


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Whether ``check()`` holds within ``timeout``: another process's progress is seen
    only by looking again."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(url + "/metrics", headers=TOKEN, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[str]:
    """``gunicorn -w 2 'notifier.server:create_app()'`` in ``tmp_path``; its base URL."""
    (tmp_path / "notifier.toml").write_text(CONFIG, encoding="utf-8")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "NOTIFIER_CONFIG": str(tmp_path / "notifier.toml"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--threads", "4",
        "--bind", "127.0.0.1:0", "--graceful-timeout", "10", "notifier.server:create_app()",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stderr is not None
    url, booted, seen = None, 0, []
    for line in process.stderr:
        seen.append(line)
        if "Listening at: " in line:
            url = line.split("Listening at: ")[1].split()[0]
        booted += "Booting worker" in line
        if url and booted == WORKERS:
            break
    assert url is not None and booted == WORKERS, "".join(seen)
    # The rest of the log goes on being read, so that gunicorn never blocks on it.
    rest: list[str] = []
    reader = threading.Thread(target=lambda: rest.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "".join(seen + rest)
        reader.join(timeout=10)


@pytest.mark.slow
def test_two_workers_deliver_each_notification_once_and_agree_on_metrics(gunicorn, tmp_path):
    url = gunicorn
    assert eventually(lambda: requests.get(url + "/readyz", timeout=10).status_code == 200)

    def post(n: int) -> requests.Response:
        body = notification([am_alert(2 * n), am_alert(2 * n + 1)], group_key=f"g{n}")
        return requests.post(url + "/api/v1/alertmanager", json=body, headers=TOKEN, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(NOTIFICATIONS)))
    assert [a.status_code for a in answers] == [200] * NOTIFICATIONS
    ids = {i for a in answers for i in a.json()["ids"]}
    assert len(ids) == NOTIFICATIONS

    audit = tmp_path / "audit.jsonl"

    def delivered() -> list[str]:
        text = audit.read_text(encoding="utf-8") if audit.exists() else ""
        return [json.loads(line)["alert"]["fingerprint"] for line in text.splitlines()]

    assert eventually(lambda: len(delivered()) >= NOTIFICATIONS), len(delivered())
    got = delivered()
    assert len(got) == len(set(got)) == NOTIFICATIONS  # each once, whichever worker sent it

    delivered_now = ("notifier_outbox_deliveries", (("channel", "audit"), ("state", "delivered")))
    assert eventually(lambda: samples(url).get(delivered_now) == NOTIFICATIONS)
    labels = (("channel", "audit"), ("kind", "jsonl"), ("outcome", "delivered"), ("reason", "sent"))
    sent = ("notifier_deliveries_total", labels)
    received = ("notifier_alerts_received_total", (("source", "alertmanager"),))
    circuit = ("notifier_circuit_state", (("channel", "audit"), ("state", "closed")))
    # Scraped several times, so that both processes answer: every answer agrees.
    for _ in range(6):
        now = samples(url)
        assert now[delivered_now] == NOTIFICATIONS
        assert now[("notifier_dead_letters", (("channel", "audit"),))] == 0
        assert now[circuit] == 1
        assert now[received] == 2 * NOTIFICATIONS  # the counters of both processes
        assert now[sent] == NOTIFICATIONS
