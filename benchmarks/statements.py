"""Scenario 6: the SQL a durable dispatch costs, counted statement by statement.

Each write transaction costs a commit, and each statement in it CPU under the file's
lock, so these counts are what the durable path's speed rests on (docs/performance.md,
"The durable path"). They are counted through SQLite's trace callback on the store's
connection, with a provider that answers at once, on a real file:

* write transactions per dispatch in a stream to one channel: one with group commit
  (each send's record rides with the next dispatch's write), two without;
* statements per dispatch in that stream: the channel lease is kept across the stream, so
  the channel's row is not written;
* statements in the writing transaction of a lone dispatch to an idle channel: the
  delivery is inserted already in flight under the channel lease.

Counting is exact, so one round is enough and the figures do not depend on the machine.
Run it alone with ``python benchmarks/run.py --only statements``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from benchmarks.measure import Figure
from benchmarks.scenario import Outcome, Settings

STREAM = 50
SCENARIO = "6-statements"


def _engine(path: Path, *, group_commit: bool) -> Any:
    from notifier.clock import FakeClock
    from notifier.models import Outcome as Delivered
    from notifier.models import Receipt
    from notifier.outbox import InlineRunner, OutboxDelivery, OutboxSettings, OutboxStore

    def deliver(channel: str, alert: Any, context: Any) -> Receipt:
        return Receipt(channel, Delivered.DELIVERED, attempts=1)

    settings = OutboxSettings(path=str(path), dedup_window=300.0, group_commit=group_commit)
    return OutboxDelivery(
        OutboxStore.open(settings.path),
        deliver,
        settings=settings,
        clock=FakeClock(),
        runner=InlineRunner(),
        rng=random.Random(7),
    )


def _traced(engine: Any) -> list[str]:
    """Every statement the store's connection runs from now on."""
    statements: list[str] = []
    engine.store.db._conn.set_trace_callback(statements.append)
    return statements


def _submit(engine: Any, title: str) -> None:
    from notifier.models import Alert
    from notifier.outbox import NewDelivery

    [receipt] = engine.submit([NewDelivery(Alert(title=title), "ops")])
    if not receipt.ok:
        raise RuntimeError(f"the benchmark's dispatch failed: {receipt.error}")


def _stream(workdir: Path, *, group_commit: bool) -> dict[str, float]:
    engine = _engine(workdir / f"stream-{group_commit}.db", group_commit=group_commit)
    try:
        _submit(engine, "warm-up")  # the first submit also recovers orphans
        statements = _traced(engine)
        for i in range(STREAM):
            _submit(engine, f"alert {i}")
        if group_commit:
            # Stop before the background flush (FLUSH_AFTER) writes the last record on
            # its own: a stream's dispatches are what is counted, not that tail.
            engine.store.db._conn.set_trace_callback(None)
        return {
            "transactions": sum(s.startswith("BEGIN") for s in statements) / STREAM,
            "statements": len(statements) / STREAM,  # BEGIN and COMMIT included
        }
    finally:
        engine.close()


def _lone(workdir: Path) -> dict[str, Any]:
    engine = _engine(workdir / "lone.db", group_commit=True)
    try:
        _submit(engine, "warm-up")
        engine.store.db.flush()  # its record, which would otherwise ride along
        statements = _traced(engine)
        _submit(engine, "disk full")
        start, end = statements.index("BEGIN IMMEDIATE") + 1, statements.index("COMMIT")
        verbs = [s.split()[0] for s in statements[start:end]]
        return {"statements": len(verbs), "verbs": verbs}
    finally:
        engine.close()


def run(settings: Settings, workdir: Path) -> Outcome:
    grouped = _stream(workdir, group_commit=True)
    plain = _stream(workdir, group_commit=False)
    lone = _lone(workdir)
    counted = (
        (
            "write transactions per dispatch, a stream to one channel",
            grouped["transactions"],
            "transactions",
            1,
        ),
        (
            "write transactions per dispatch, group_commit = false",
            plain["transactions"],
            "transactions",
            2,
        ),
        (
            "statements per dispatch, a stream to one channel",
            grouped["statements"],
            "statements",
            5,
        ),
        (
            "statements writing a lone dispatch to an idle channel",
            lone["statements"],
            "statements",
            3,
        ),
    )
    figures = [
        Figure(SCENARIO, name, value, unit, target=most, compare="value", op="<=")
        for name, value, unit, most in counted
    ]
    details = {"stream": STREAM, "grouped": grouped, "plain": plain, "lone": lone}
    return Outcome(figures, details)
