"""A real crash: a process dispatching 1,000 alerts to two channels is killed with SIGKILL.

After a restart (``notifier worker --once``) every alert has reached both receivers at
least once, none is lost, and the duplicates (deliveries that reached a receiver just
before the kill) are counted: at most one per delivery in flight, the channel's
``workers`` (8 by default), and each repeat carries the same idempotency key. Different
alerts may arrive in any order; each alert here is sent once per channel.
"""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
from outbox_support import Receiver, webhook_config

ALERTS = 1_000
WORKERS = 8  # [dispatcher] workers: deliveries of a channel in flight at once
CHILD = """
import sys
from notifier import Alert, Dispatcher

alerts = [Alert(title=f"alert {i:04d}") for i in range(int(sys.argv[2]))]
with Dispatcher.from_config(sys.argv[1]) as dispatcher:
    dispatcher.dispatch_many(alerts)
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def env():
    return {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}


def test_a_killed_dispatcher_loses_nothing_and_its_duplicates_are_counted(tmp_path):
    with Receiver() as ops, Receiver() as audit:
        config = tmp_path / "notifier.toml"
        config.write_text(webhook_config({"ops": ops, "audit": audit}, 'path = "outbox.db"'))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(config), str(ALERTS)],
            env=env(),
            stderr=subprocess.PIPE,
        )
        received = threading.Event()
        for _ in range(3000):  # until a third of the deliveries reached the receivers
            if len(ops.titles) + len(audit.titles) >= 2 * ALERTS // 3 or child.poll() is not None:
                break
            received.wait(0.005)
        assert child.poll() is None, child.stderr.read().decode()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stderr.close()
        before = (len(ops.titles), len(audit.titles))
        assert sum(before) < 2 * ALERTS

        restart = subprocess.run(
            [sys.executable, "-m", "notifier", "worker", "--once", "--config", str(config)],
            env=env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert restart.returncode == 0, restart.stderr

    expected = [f"alert {i:04d}" for i in range(ALERTS)]
    duplicates = {}
    for name, receiver in (("ops", ops), ("audit", audit)):
        assert set(receiver.titles) == set(expected)  # every alert, none lost
        counts = collections.Counter(receiver.titles)
        repeated = [t for t, n in counts.items() if n > 1]
        duplicates[name] = len(receiver.titles) - ALERTS
        assert duplicates[name] <= WORKERS
        for title in repeated:  # a repeat is recognisable: the same idempotency key
            keys = {k for t, k in zip(receiver.titles, receiver.keys, strict=True) if t == title}
            assert len(keys) == 1
    print(f"\nkilled after {before} deliveries; duplicates after restart: {duplicates}")


UNCLOSED = """
import sys
from notifier import Alert, Dispatcher

dispatcher = Dispatcher.from_config(sys.argv[1])  # never closed: the script just ends
receipts = dispatcher.dispatch(Alert(title="from a script"))
print(receipts[0].outcome.value)
"""


def test_a_script_that_ends_without_closing_still_records_its_sends(tmp_path):
    with Receiver() as ops:
        config = tmp_path / "notifier.toml"
        outbox = tmp_path / "outbox.db"
        config.write_text(webhook_config({"ops": ops}, f'path = "{outbox}"'))
        ran = subprocess.run(
            [sys.executable, "-c", UNCLOSED, str(config)],
            capture_output=True, text=True, env=env(), timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "delivered"
    conn = sqlite3.connect(outbox)
    try:
        states = conn.execute("SELECT state FROM deliveries").fetchall()
        leases = conn.execute("SELECT lease_owner FROM channels").fetchall()
    finally:
        conn.close()
    # Recorded at exit: nothing left in flight for a restart to send again.
    assert states == [("delivered",)] and leases == [(None,)]
    assert ops.titles == ["from a script"]
