"""Two processes share an outbox; the one delivering is killed with SIGKILL in the middle
of a send. The survivor, a ``notifier worker`` with default settings, delivers the
killed one's delivery within 15 seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from outbox_support import Receiver

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

HOLDER = """
import sys
from notifier import Alert, Dispatcher

with Dispatcher.from_config(sys.argv[1]) as dispatcher:
    dispatcher.dispatch(Alert(title="held"))
"""


def env():
    return {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}


def test_a_worker_takes_over_within_15s_of_the_lease_holder_being_killed(tmp_path):
    with Receiver() as sink:
        arrived = threading.Event()
        release = threading.Event()

        def hang_first(request):
            sink.titles.append(request.json()["title"])
            if len(sink.titles) == 1:
                arrived.set()
                release.wait(60)  # the holder is killed while its send hangs here
            return {"id": f"m{len(sink.titles)}"}

        sink.server.route("POST", sink.path, hang_first)
        config = tmp_path / "notifier.toml"
        config.write_text(
            f'[channels.ops]\nkind = "webhook"\nurl = "{sink.url}"\nmax_attempts = 1\n\n'
            f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
        )
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(config)], env=env())
        worker = subprocess.Popen(
            [sys.executable, "-m", "notifier", "worker", "--config", str(config)],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert arrived.wait(30), "the holder never sent"
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)
            killed = time.monotonic()
            while len(sink.titles) < 2 and time.monotonic() - killed < 30:
                release.wait(0.05)
            took = time.monotonic() - killed
        finally:
            release.set()
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    assert sink.titles == ["held", "held"]
    assert took <= 15, f"taken over after {took:.1f}s"
    print(f"\ntaken over {took:.1f}s after the kill")
