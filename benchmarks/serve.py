"""Scenario ``serve``: Alertmanager notifications accepted per second by ``notifier
serve``, against a bare waitress WSGI app that reads the body and answers 200.

Each side runs in its own process under waitress with the same thread count; 32 client
threads (in two client processes of 16) keep one HTTP/1.1 connection each and post 10-alert
notifications, each distinct (so none is deduplicated), as fast as answers come. The
notifier side answers 200 only once the deliveries are in the outbox file (WAL,
``synchronous = normal``) and delivers them to a ``jsonl`` channel in the same process, as
``notifier serve`` does. Rounds alternate the two sides; the figures are medians.

Alongside (no targets): the deliveries the notifier side finished during each round
and the queue it was left with (delivery gives way to requests while they arrive, see
docs/serve.md), and each server process's CPU time per request (Linux), which shows where
a shared machine's time went whatever the other processes took.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measure import ROOT, Figure, interleaved
from benchmarks.scenario import Outcome, Settings

CLIENTS = 32
ALERTS = 10
RATIO_TARGET = 0.5
P99_TARGET_MS = 50.0
THREADS = 16  # notifier serve's default (--threads), and the bare app's
# Client processes, 32 / N connections each, the same for both apps. One process of 32
# posting threads takes turns on one interpreter; more let the client use both cores
# (NOTIFIER_BENCH_CLIENT_PROCESSES=1: the single process of earlier runs).
CLIENT_PROCESSES = int(os.environ.get("NOTIFIER_BENCH_CLIENT_PROCESSES", "2"))
# NOTIFIER_BENCH_SERVE_STAGES=1 adds servers that stop part of the way through a request
# and answer 200 (no target): the JSON read, the notification parsed and checked, the
# deliveries built (routes matched, messages rendered); nothing is stored. They show what
# each step costs against the bare app under the same load.
STAGES = ("json", "parse", "route") if os.environ.get("NOTIFIER_BENCH_SERVE_STAGES") else ()

CONFIG = """
[channels.audit]
kind = "jsonl"
path = "audit.jsonl"

[outbox]
path = "outbox.db"

[server]
listen = "127.0.0.1:0"
"""


def bare_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def stage_app(stage: str, workdir: str) -> Any:
    """A WSGI app doing the first steps of ``notifier serve``'s accept path, up to ``stage``."""
    from notifier.server import create_app
    from notifier.server.app import parse_group
    from notifier.server.ingest import notification_deliveries

    full = create_app(Path(workdir) / "accept" / "notifier.toml", deliver=False)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length).decode("utf-8"))
        if stage != "json":
            group = parse_group(data)
            if stage == "route":
                notification_deliveries(full.dispatcher, full.budgets, group)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    return app


def serve(kind: str, workdir: str) -> None:
    """The server process: prints its port, serves until stdin closes."""
    import logging

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" on purpose
    from notifier.server.serving import run_until, waitress_server

    if kind == "bare":
        from waitress.server import create_server

        server: Any = create_server(bare_app, host="127.0.0.1", port=0, threads=THREADS)
        app = None
    elif kind in STAGES:
        from waitress.server import create_server

        server = create_server(stage_app(kind, workdir), host="127.0.0.1", port=0, threads=THREADS)
        app = None
    else:
        from notifier.server import create_app

        # "accept": the same server with delivery left to other processes (notifier
        # worker), to show what accepting alone costs.
        app = create_app(Path(workdir) / kind / "notifier.toml", deliver=kind == "notifier")
        server = waitress_server(app, "127.0.0.1", 0, threads=THREADS)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print(server.socket.getsockname()[1], flush=True)
    run_until(server, stop)
    if app is not None:
        app.close()


_LOADS = itertools.count()


def body(load: int, client: int, n: int) -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "Bench", "instance": f"l{load}-c{client}-{n}-{a}",
                       "severity": "warning"},
            "annotations": {"summary": f"bench alert {a}"},
            "startsAt": "2026-12-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{load:04x}{client:04x}{n:08x}{a:04x}",
        }
        for a in range(ALERTS)
    ]  # fmt: skip
    return json.dumps(
        {"version": "4", "status": "firing", "receiver": "bench",
         "groupKey": f"{load}-{client}-{n}", "groupLabels": {}, "commonLabels": {},
         "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": alerts}
    ).encode()  # fmt: skip


def post(
    port: int, this: int, indices: range, seconds: float, ready: Callable[[], None]
) -> dict[str, Any]:
    """Keep-alive clients ``indices`` posting to ``port`` for ``seconds`` once ``ready()``
    returns: their latencies, the non-200 answers and when the posting began and ended
    (``perf_counter``, which is system-wide on Linux)."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    built = threading.Barrier(len(indices) + 1)  # every client has built its bodies
    start = threading.Barrier(len(indices) + 1)  # the deadline is set
    deadline = [0.0]

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        n = 0
        bodies = [body(this, index, k) for k in range(4000)]  # built before the clock starts
        built.wait()
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            conn.request("POST", "/api/v1/alertmanager", bodies[n % len(bodies)],
                         {"Content-Type": "application/json"})  # fmt: skip
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                with lock:
                    failures[0] += 1
            mine.append(time.perf_counter() - began)
            n += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in indices]
    for t in threads:
        t.start()
    built.wait()
    ready()
    # Set before the clients are released: each reads it as soon as it passes the barrier.
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for t in threads:
        t.join()
    return {"latencies": latencies, "failures": failures[0], "began": began,
            "ended": time.perf_counter()}  # fmt: skip


def load(server: Server, seconds: float) -> dict[str, Any]:
    """32 keep-alive clients posting for ``seconds``, in ``CLIENT_PROCESSES`` processes
    of their own: answers per second, latencies, the server's CPU time per answer and,
    for a notifier, what it delivered meanwhile."""
    this = next(_LOADS)  # every notification of every run distinct: none deduplicated
    before: dict[str, Any] = {}

    def snapshot() -> None:
        before.update(delivered=server.delivered(), cpu=server.cpu())

    share = CLIENTS // CLIENT_PROCESSES
    groups = [range(k * share, (k + 1) * share) for k in range(CLIENT_PROCESSES)]
    if CLIENT_PROCESSES == 1:
        parts = [post(server.port, this, groups[0], seconds, snapshot)]
    else:
        command = [sys.executable, "-m", "benchmarks.serve", "client", str(server.port)]
        clients = [
            subprocess.Popen(
                [*command, str(this), str(group.start), str(group.stop), str(seconds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
            )
            for group in groups
        ]  # fmt: skip
        for c in clients:
            assert c.stdout is not None and c.stdout.readline().strip() == "ready"
        snapshot()
        for c in clients:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        parts = [json.loads(c.communicate()[0]) for c in clients]
    elapsed = max(p["ended"] for p in parts) - min(p["began"] for p in parts)
    delivered_after, cpu_after, queued = server.delivered(), server.cpu(), server.queued()
    ordered = sorted(x for p in parts for x in p["latencies"])
    cpu = before["cpu"]
    return {
        "per_second": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "requests": len(ordered),
        "failures": sum(p["failures"] for p in parts),
        "delivered_per_second": (delivered_after - before["delivered"]) / elapsed,
        "queued_after": queued,
        "server_cpu_ms": (cpu_after - cpu) / len(ordered) * 1000 if cpu is not None else None,
    }


def client_process(port: int, this: int, first: int, stop: int, seconds: float) -> None:
    """A client process: says "ready" once its clients are connected and their bodies
    built, posts once a line arrives on stdin, then prints what :func:`post` measured."""

    def ready() -> None:
        print("ready", flush=True)
        sys.stdin.readline()

    print(json.dumps(post(port, this, range(first, stop), seconds, ready)), flush=True)


class Server:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.outbox = workdir / kind / "outbox.db" if kind != "bare" else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve", kind, str(workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def cpu(self) -> float | None:
        """Seconds of CPU the server process has used (user and system; Linux only)."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _count(self, where: str) -> int:
        if self.outbox is None or not self.outbox.exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"{self.outbox.as_uri()}?mode=ro", uri=True)) as db:
            return int(db.execute(f"SELECT count(*) FROM deliveries WHERE {where}").fetchone()[0])

    def delivered(self) -> int:
        return self._count("state = 'delivered'")

    def queued(self) -> int:
        return self._count("state IN ('pending', 'inflight')")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def run(settings: Settings, workdir: Path) -> Outcome:
    for kind in ("notifier", "accept"):
        (workdir / kind).mkdir()
        (workdir / kind / "notifier.toml").write_text(CONFIG, encoding="utf-8")
    seconds = settings.pick(quick=2, full=5)
    rounds = settings.pick(quick=1, full=3)
    servers = {kind: Server(kind, workdir) for kind in ("notifier", "bare", "accept", *STAGES)}
    try:
        results = interleaved(
            {name: (lambda s=s: load(s, seconds)) for name, s in servers.items()},
            rounds=rounds,
            warmup=1,
        )
    finally:
        for server in servers.values():
            server.close()
    ours, bare, accept = results["notifier"], results["bare"], results["accept"]
    ratios = [o["per_second"] / b["per_second"] for o, b in zip(ours, bare, strict=True)]
    per_second = statistics.median(r["per_second"] for r in ours)
    note = f"{CLIENTS} keep-alive clients, {ALERTS}-alert notifications, durable"
    figures = [
        Figure(
            "serve", "notifications accepted", per_second, "/s",
            baseline=statistics.median(r["per_second"] for r in bare),
            baseline_name="bare waitress app", target=RATIO_TARGET, note=note,
            paired_ratio=statistics.median(ratios),
        ),
        Figure("serve", "accept latency p50 (no target)",
               statistics.median(r["p50_ms"] for r in ours), "ms",
               baseline=statistics.median(r["p50_ms"] for r in bare),
               baseline_name="bare waitress app", compare="value"),
        Figure("serve", "accept latency p99", statistics.median(r["p99_ms"] for r in ours),
               "ms", baseline=statistics.median(r["p99_ms"] for r in bare),
               baseline_name="bare waitress app", compare="value", op="<=",
               target=P99_TARGET_MS),
        Figure("serve", "accepted, delivery in other processes (no target)",
               statistics.median(r["per_second"] for r in accept), "/s",
               baseline=statistics.median(r["per_second"] for r in bare),
               baseline_name="bare waitress app",
               paired_ratio=statistics.median(
                   a["per_second"] / b["per_second"] for a, b in zip(accept, bare, strict=True)
               )),
        Figure("serve", "delivered meanwhile, same process (no target)",
               statistics.median(r["delivered_per_second"] for r in ours), "/s"),
    ]  # fmt: skip
    if all(r["server_cpu_ms"] is not None for r in [*ours, *bare, *accept]):
        figures += [
            Figure("serve", f"server CPU per request, {name} (no target)",
                   statistics.median(r["server_cpu_ms"] for r in rows), "ms",
                   baseline=statistics.median(r["server_cpu_ms"] for r in bare),
                   baseline_name="bare waitress app", compare="value")
            for name, rows in (("with delivery", ours), ("accept only", accept))
        ]  # fmt: skip
    stage_names = {"json": "JSON read", "parse": "notification parsed and checked",
                   "route": "deliveries built, nothing stored"}  # fmt: skip
    figures += [
        Figure("serve", f"stage: {stage_names[stage]} (no target)",
               statistics.median(r["per_second"] for r in results[stage]), "/s",
               baseline=statistics.median(r["per_second"] for r in bare),
               baseline_name="bare waitress app",
               paired_ratio=statistics.median(
                   a["per_second"] / b["per_second"]
                   for a, b in zip(results[stage], bare, strict=True)
               ))
        for stage in STAGES
    ]  # fmt: skip
    failures = sum(r["failures"] for r in [*ours, *accept])
    details = {"notifier": ours, "bare": bare, "accept_only": accept, "non_200_answers": failures}
    details.update({f"stage_{stage}": results[stage] for stage in STAGES})
    return Outcome(figures, details)


if __name__ == "__main__":
    if sys.argv[1] == "client":
        port, this, first, stop = (int(a) for a in sys.argv[2:6])
        client_process(port, this, first, stop, float(sys.argv[6]))
    else:
        serve(sys.argv[1], sys.argv[2])
