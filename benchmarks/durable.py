"""Scenario 4: the durable outbox (``notifier.outbox``) on a real file.

*Enqueue*: write 10,000, 50,000 and 100,000 deliveries (1,000 per transaction, each one
committed in WAL mode with ``synchronous=NORMAL``, the shipped default), each count in a
fresh process so its peak RSS is its own. The baseline is plain ``sqlite3``
``executemany`` of the same rows into the same schema with the same commits: what the
outbox's own bookkeeping (keys, coalescing, dedup lookups, id checks) costs on top.

*Durable send path*: added to scenario 1 as a variant: ``Dispatcher.dispatch`` per alert
with ``[outbox]`` configured (write, claim, deliver, record the attempt, all committed),
compared with the in-memory ``Dispatcher.dispatch`` of the same round.

Run one enqueue measurement by hand with
``python -m benchmarks.durable --count 100000 --path /tmp/outbox.db [--raw]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.measure import ROOT, Figure, Sample, timed
from benchmarks.scenario import Outcome, Settings

BATCH = 1000
SEGMENT = 10_000
CHECKPOINTS = (10_000, 50_000, 100_000)
ENQUEUE_TARGET = 20_000.0  # deliveries/s
RSS_TARGET_MB = 150.0
FLAT_TARGET_MB = 5.0  # RSS growth from 50k to 100k


def _alerts(start: int, count: int) -> Iterator[Any]:
    from benchmarks.webhook_throughput import make_alerts

    yield from make_alerts(count, prefix=f"outbox {start}")


def _rss_mb() -> float:
    """Peak resident memory of this process image, in MB.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across ``exec``, so
    a child started from a large parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def enqueue(count: int, path: str, raw: bool) -> dict[str, Any]:
    """Write ``count`` deliveries in batches; time only the writes. Runs in a child.

    Records the peak RSS so far at every checkpoint count reached, and the write rate of
    every 10,000, to show whether either grows with the size of the queue.
    """
    from notifier.outbox import NewDelivery, OutboxSettings, OutboxStore

    settings = OutboxSettings(path=path)
    store = OutboxStore.open(settings.path, synchronous=settings.synchronous)
    if raw:
        store.close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = NORMAL")  # the file is already in WAL mode
        write = _raw_writer(conn)
    else:

        def write(alerts: list[Any]) -> None:
            items = [NewDelivery(alert, "hook") for alert in alerts]
            store.enqueue_many(items, now=time.time(), dedup_window=settings.dedup_window)

    rss_before = _rss_mb()
    spent = cpu = segment = 0.0
    segments: list[float] = []
    peaks: dict[str, float] = {}
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        alerts = list(_alerts(start, size))
        began, began_cpu = time.perf_counter(), time.process_time()
        write(alerts)
        took = time.perf_counter() - began
        spent, segment = spent + took, segment + took
        cpu += time.process_time() - began_cpu
        done = start + size
        if done % SEGMENT == 0:
            segments.append(round(SEGMENT / segment))
            segment = 0.0
        if done in CHECKPOINTS:
            peaks[str(done)] = _rss_mb()
    return {
        "count": count,
        "seconds": spent,
        "rate": count / spent,
        "cpu_us_per_delivery": cpu * 1e6 / count,
        "rate_per_10k": segments,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb(),
        "peak_rss_mb_at": peaks,
        "file_mb": Path(path).stat().st_size / 1e6,
    }


def _raw_writer(conn: sqlite3.Connection) -> Callable[[list[Any]], None]:
    insert = (
        "INSERT INTO deliveries (idempotency_key, channel, fingerprint, status, alert,"
        " mentions, state, next_attempt_at, created_at, enqueued_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)"
    )

    def write(alerts: list[Any]) -> None:
        now = time.time()
        rows = []
        for alert in alerts:
            key = hashlib.sha256(f"{alert.fingerprint}\x1fhook".encode()).hexdigest()[:32]
            text = json.dumps(alert.to_dict(), ensure_ascii=False)
            rows.append((key, "hook", alert.fingerprint, alert.status.value, text, "[]",
                         now, now, now, now))  # fmt: skip
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")

    return write


def _child(count: int, path: Path, raw: bool) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.durable", "--count", str(count)]
    command += ["--path", str(path), *(["--raw"] if raw else [])]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"enqueue child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def _outbox_available() -> str:
    try:
        import notifier.outbox  # noqa: F401
    except ImportError as exc:
        return f"notifier.outbox cannot be imported yet ({exc})"
    return ""


def run(settings: Settings, workdir: Path) -> Outcome:
    pending = _outbox_available()
    if pending:
        return Outcome([], pending=pending)
    counts = CHECKPOINTS
    top_count = counts[-1]
    raw = _child(top_count, workdir / "raw.db", raw=True)
    top = _child(top_count, workdir / f"outbox-{top_count}.db", raw=False)
    if settings.quick:  # one process, its peak read at each count on the way
        peaks = {c: top["peak_rss_mb_at"][str(c)] for c in counts}
        how = "one process, peak RSS read as it passed each count"
    else:  # a fresh process per count, so each peak is that count's own
        peaks = {c: _child(c, workdir / f"outbox-{c}.db", raw=False)["peak_rss_mb"]
                 for c in counts[:-1]}  # fmt: skip
        peaks[top_count] = top["peak_rss_mb"]
        how = "a fresh process per count"
    growth = peaks[counts[-1]] - peaks[counts[-2]]
    batch = one_transaction(workdir / "one-transaction.db")
    scenario = "4-outbox"
    figures = [
        Figure(
            scenario,
            f"enqueue {counts[-1]:,} deliveries, {BATCH} per committed transaction",
            top["rate"],
            "deliveries/s",
            baseline=raw["rate"],
            baseline_name="plain sqlite3 executemany, same rows and schema",
            target=ENQUEUE_TARGET,
            compare="value",
            note=f"file {top['file_mb']:.0f} MB; CPU {top['cpu_us_per_delivery']:.0f} vs "
            f"{raw['cpu_us_per_delivery']:.0f} us/delivery (a CPU-bound ceiling of "
            f"{1e6 / top['cpu_us_per_delivery']:,.0f}/s on one free core); per 10k: "
            + ", ".join(f"{r / 1000:.0f}k" for r in top["rate_per_10k"])
            + "/s",
        ),
        Figure(
            scenario,
            f"enqueue {batch['count']:,.0f} deliveries in one committed transaction",
            batch["rate"],
            "deliveries/s",
            target=ENQUEUE_TARGET,
            compare="value",
        ),
        Figure(
            scenario,
            f"peak RSS, {counts[-1]:,} enqueued",
            top["peak_rss_mb"],
            "MB",
            baseline=top["rss_before_mb"],
            baseline_name="same process before enqueueing",
            target=RSS_TARGET_MB,
            compare="value",
            op="<",
        ),
        Figure(
            scenario,
            f"peak RSS growth from {counts[-2]:,} to {counts[-1]:,} enqueued",
            growth,
            "MB",
            target=FLAT_TARGET_MB,
            compare="value",
            op="<",
            note=f"peak RSS by count ({how}): "
            + ", ".join(f"{c // 1000}k {peaks[c]:.1f} MB" for c in counts),
        ),
    ]
    details = {
        "batch": BATCH,
        "one_transaction": batch,
        "outbox": top,
        "raw_sqlite": raw,
        "peak_rss_mb_by_count": {str(c): round(v, 2) for c, v in peaks.items()},
        "peak_rss_measured_in": how,
    }
    return Outcome(figures, details)


def one_transaction(path: Path, count: int = 20_000) -> dict[str, float]:
    """``count`` deliveries (two channels per alert) in one ``enqueue_many`` call, that is
    one committed transaction; alerts are built outside the timed part."""
    from notifier.models import Alert
    from notifier.outbox import NewDelivery, OutboxStore

    alerts = [
        Alert(
            title=f"disk full on host{i}", labels={"host": f"h{i}", "team": "ops"}, body="x" * 200
        )
        for i in range(count // 2)
    ]
    items = [NewDelivery(a, c) for a in alerts for c in ("ops", "audit")]
    store = OutboxStore.open(str(path))
    try:
        started = time.perf_counter()
        results = store.enqueue_many(items, now=1_000.0, dedup_window=300)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    if len({r.id for r in results}) != len(items):
        raise RuntimeError("enqueue_many gave out an id twice")
    return {"count": len(items), "rate": len(items) / seconds}


# -- the durable send path, as a variant of scenario 1 ---------------------------------------


def sequential_variant() -> dict[str, tuple[Callable[..., Callable[[], Sample]], str]]:
    """Scenario 1's extra variant: ``dispatch`` per alert with ``[outbox]`` configured."""
    if _outbox_available():
        return {}
    return {"durable": (_durable_runner, "dispatch() per alert with [outbox] on a file")}


def _durable_runner(
    url: str, count: int, stack: contextlib.ExitStack, workdir: Path
) -> Callable[[], Sample]:
    from benchmarks.webhook_throughput import make_alerts, write_config
    from notifier.dispatcher import Dispatcher

    workdir.mkdir(parents=True, exist_ok=True)
    outbox = f"[outbox]\npath = {json.dumps(str(workdir / 'outbox.db'))}\n"
    config = write_config(workdir, {"hook": url}, extra=outbox)
    dispatcher = stack.enter_context(Dispatcher.from_config(config))
    if getattr(dispatcher, "outbox", None) is None:
        raise RuntimeError("this notifier ignores [outbox]: the durable path is not there")
    rounds = iter(range(1_000_000))

    def run() -> Sample:
        # Fresh alerts every round: the same ones again would be dropped by the dedup
        # window, which is fast but not a send.
        alerts = make_alerts(count, prefix=f"durable round {next(rounds)}")

        def send() -> None:
            for alert in alerts:
                receipts = dispatcher.dispatch(alert)
                if not all(r.ok for r in receipts):
                    raise RuntimeError(f"durable delivery failed: {receipts[0].error}")

        return timed(count, send)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description="Enqueue deliveries into an outbox file.")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--raw", action="store_true", help="plain sqlite3 instead of the outbox")
    args = parser.parse_args()
    print(json.dumps(enqueue(args.count, args.path, args.raw)))


if __name__ == "__main__":
    main()
