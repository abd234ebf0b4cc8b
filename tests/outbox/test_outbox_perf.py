"""Writes are batched: a burst of alerts costs one transaction, committed to disk."""

from __future__ import annotations

import time

from notifier.models import Alert
from notifier.outbox import NewDelivery, OutboxStore

# The target is 20,000 deliveries a second; the assertion leaves room for a busy CI
# machine, and the measured rate is printed for the record (pytest -s).
FLOOR = 10_000


def test_a_batch_of_twenty_thousand_deliveries_is_written_in_one_fast_transaction(db_path):
    store = OutboxStore.open(db_path)
    alerts = [
        Alert(
            title=f"disk full on host{i}", labels={"host": f"h{i}", "team": "ops"}, body="x" * 200
        )
        for i in range(10_000)
    ]
    items = [NewDelivery(a, c) for a in alerts for c in ("ops", "audit")]
    start = time.perf_counter()
    results = store.enqueue_many(items, now=1_000.0, dedup_window=300)
    rate = len(items) / (time.perf_counter() - start)
    print(f"\nenqueue_many: {rate:,.0f} deliveries/s committed")
    store.close()
    reopened = OutboxStore.open(db_path)
    assert reopened.counts() == {"audit": {"pending": 10_000}, "ops": {"pending": 10_000}}
    assert len({r.id for r in results}) == 20_000
    reopened.close()
    assert rate > FLOOR
