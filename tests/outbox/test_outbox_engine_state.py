"""What a server asks of the engine: whether it can write, how long to idle, the state."""

from __future__ import annotations

import sqlite3

from outbox_support import alert

from notifier.outbox import NewDelivery, OutboxStore


def test_a_file_is_writable_until_another_process_holds_its_write_lock(make_engine, db_path):
    engine = make_engine(store=OutboxStore.open(db_path, busy_timeout=0.05))
    assert engine.writable() is None
    assert engine.path == db_path
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        problem = engine.writable()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert problem is not None and "locked by another process" in problem
    assert engine.writable() is None
    assert engine.delivery_counts() == {}  # the check wrote nothing


def test_idle_wait_runs_to_the_soonest_due_delivery_within_the_poll_interval(
    make_engine, provider, clock
):
    engine = make_engine(poll_interval=30, backoff_initial=4, breaker_threshold=0)
    assert engine.idle_wait() == 30  # nothing queued: poll
    provider.fail("ops", retry_after=7)
    engine.submit([NewDelivery(alert("a"), "ops")])
    assert engine.idle_wait() == 7  # the retry falls due in 7 s
    clock.advance(5)
    assert engine.idle_wait() == 2
    clock.advance(2)
    assert engine.idle_wait() == 0.01  # due now: look again at once


def test_counts_and_circuit_states_are_read_from_the_file_by_every_engine(
    make_engine, provider, db_path
):
    engine = make_engine(store=OutboxStore.open(db_path), breaker_threshold=1)
    other = make_engine(store=OutboxStore.open(db_path), breaker_threshold=1)
    provider.fail("ops")
    engine.submit([NewDelivery(alert("a"), "ops"), NewDelivery(alert("b"), "audit")])
    engine.enqueue([NewDelivery(alert("c"), "audit")])
    expected = {"audit": {"delivered": 1, "pending": 1}, "ops": {"pending": 1}}
    assert engine.delivery_counts() == other.delivery_counts() == expected
    assert engine.circuit_states() == other.circuit_states() == {"audit": "closed", "ops": "open"}
