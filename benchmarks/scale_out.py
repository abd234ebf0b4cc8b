"""Scenario 8: deliveries on Celery workers (``[celery]``), 1, 2 and 4 worker processes.

Each round queues the same number of deliveries to a webhook channel whose sink answers
in 20 ms (:mod:`benchmarks.sink`, its own process), with no worker running; then starts
N ``notifier worker`` processes and measures deliveries per second from the sink's first
request to its last. The baseline is one worker: the figure for N workers is its rate,
and its ratio to one worker's the scaling.

Each worker runs 2 deliveries at once (``--concurrency 2``), so that one worker is held
by the sink's latency (at most 100 a second) rather than by the CPU: the ratios then say
whether workers add up, i.e. whether the shared state in Redis serialises them, instead
of how many cores the machine has. Four workers need more CPU than two cores give.

Redis is the one on 127.0.0.1:6379 (database 12, flushed) when it answers, else a
``redis-server`` started for the run on a free port; without either the scenario is
pending. Run it alone with ``python benchmarks/run.py --only scale-out``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.measure import ROOT, Figure
from benchmarks.scenario import Outcome, Settings
from benchmarks.sink import Sink

LATENCY = 0.02
CONCURRENCY = 2
WORKERS = (1, 2, 4)
DB = 12
# Two worker processes on a machine with at least two cores deliver at least this many
# times what one does: the shared state must not serialise the workers.
TWO_WORKER_TARGET = 1.5


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _redis(workdir: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    if _answers(6379):
        return f"redis://127.0.0.1:6379/{DB}", None
    binary = shutil.which("redis-server")
    if binary is None:
        return "", None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.monotonic() + 10
    while not _answers(port) and time.monotonic() < end:
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", process


def _config(path: Path, broker: str, url: str, queue: str) -> Path:
    path.write_text(
        f"""
[channels.hook]
kind = "webhook"
url = "{url}"
rate_limit = false

[[routes]]
channels = ["hook"]

[celery]
broker = "{broker}"
queue = "{queue}"
dedup_window = 0
"""
    )
    return path


def _round(workers: int, count: int, broker: str, workdir: Path) -> float:
    """Deliveries per second of ``workers`` processes emptying a queue of ``count``."""
    from notifier.dispatcher import Dispatcher
    from notifier.models import Alert

    with Sink(LATENCY) as sink:
        config = _config(
            workdir / f"n{workers}.toml", broker, sink.url(), f"bench-{workers}-{os.getpid()}"
        )
        with Dispatcher.from_config(config) as dispatcher:
            alerts = [Alert(title=f"scale {workers} {i}") for i in range(count)]
            receipts = dispatcher.dispatch_many(alerts)
        assert all(r.outcome.value == "queued" for r in receipts), receipts[:1]
        command = [sys.executable, "-m", "notifier", "worker", "--config", str(config)]
        command += ["--concurrency", str(CONCURRENCY), "-q"]
        processes = [
            subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for _ in range(workers)
        ]
        try:
            first = last = None
            start_count = 0
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = int(sink.stats()["requests"])
                now = time.perf_counter()
                if first is None and done > 0:
                    first, start_count = now, done
                if done >= count:
                    last = now
                    break
                time.sleep(0.01)
            if first is None or last is None or last <= first:
                raise RuntimeError(f"{workers} worker(s) did not deliver {count} in time")
            return (count - start_count) / (last - first)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def run(settings: Settings, workdir: Path) -> Outcome:
    broker, server = _redis(workdir)
    if not broker:
        return Outcome([], pending="no Redis on 127.0.0.1:6379 and redis-server not installed")
    import redis

    client = redis.Redis.from_url(broker)
    count = settings.pick(quick=400, full=2000)
    rates: dict[int, float] = {}
    try:
        for workers in WORKERS:
            client.flushdb()
            rates[workers] = _round(workers, count, broker, workdir)
    finally:
        client.flushdb()
        client.close()
        if server is not None:
            server.terminate()
            server.wait(10)
    cores = os.cpu_count() or 1
    figures = [
        Figure(
            "8-scale-out",
            "deliveries/s, 1 worker process (2 at once, sink answers in 20 ms)",
            rates[1],
            "deliveries/s",
            note=f"{count} deliveries; {CONCURRENCY} in flight at 20 ms is at most "
            f"{CONCURRENCY / LATENCY:.0f}/s",
        )
    ]
    for workers in WORKERS[1:]:
        target = TWO_WORKER_TARGET if workers == 2 and cores >= 2 else None
        figures.append(
            Figure(
                "8-scale-out",
                f"deliveries/s, {workers} worker processes",
                rates[workers],
                "deliveries/s",
                baseline=rates[1],
                baseline_name="1 worker process",
                target=target,
                note=f"{cores} CPU cores on this machine",
            )
        )
    details = {"deliveries": count, "rates": rates, "cores": cores, "latency": LATENCY}
    return Outcome(figures, details)
