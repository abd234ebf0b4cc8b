"""The durable send path of one dispatch: recorded durably, order and limits intact.

How many transactions and statements it costs is counted by the benchmark
(``benchmarks/statements.py``), not here.
"""

from __future__ import annotations

import json
import sqlite3
import threading

import attrs
import pytest
from outbox_support import alert

from notifier.errors import OutboxError
from notifier.kinds import RateLimit
from notifier.models import Outcome, Receipt
from notifier.outbox import NewDelivery, OutboxStore
from notifier.outbox.engine import FunctionDeliverer


def items(titles, *channels):
    return [NewDelivery(alert(t), c) for t in titles for c in channels]


def in_the_file(db_path):
    """Another process's view of the file: each delivery's title and state, the lanes'
    holders (a plain connection, so nothing the store holds back is written first)."""
    other = sqlite3.connect(db_path)
    try:
        rows = other.execute("SELECT alert, state FROM deliveries ORDER BY id").fetchall()
        leases = [owner for (owner,) in other.execute("SELECT lease_owner FROM channels")]
    finally:
        other.close()
    return [(json.loads(text)["title"], state) for text, state in rows], leases


def test_a_stream_of_dispatches_is_all_recorded_by_the_next_read(make_engine, provider, db_path):
    engine = make_engine(store=OutboxStore.open(db_path), dedup_window=300.0)
    engine.submit(items(["warm-up"], "ops"))  # the first submit also recovers orphans
    receipts = [engine.submit(items([f"alert {i}"], "ops"))[0] for i in range(3)]
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 3
    # A read sees every send recorded, the last one included (group commit).
    assert engine.store.counts() == {"ops": {"delivered": 4}}
    titles = ["warm-up", "alert 0", "alert 1", "alert 2"]
    assert in_the_file(db_path) == ([(t, "delivered") for t in titles], [None])
    assert provider.titles("ops") == titles


def test_without_group_commit_a_dispatch_returns_after_its_record(make_engine, db_path):
    engine = make_engine(store=OutboxStore.open(db_path), group_commit=False)
    engine.submit(items(["warm-up"], "ops"))
    engine.submit(items(["disk full"], "ops"))
    # Nothing owed: another process already sees both sends recorded and the lane free.
    assert in_the_file(db_path) == ([("warm-up", "delivered"), ("disk full", "delivered")], [None])


def test_a_stream_to_one_channel_is_delivered_in_order_and_leaves_the_lane_free(
    make_engine, provider, db_path
):
    engine = make_engine(store=OutboxStore.open(db_path), dedup_window=300.0)
    engine.submit(items(["first"], "ops"))
    engine.submit(items(["second"], "ops"))
    assert provider.titles("ops") == ["first", "second"]
    assert engine.store.counts() == {"ops": {"delivered": 2}}
    assert in_the_file(db_path) == ([("first", "delivered"), ("second", "delivered")], [None])


def test_a_held_lane_is_given_back_when_the_next_dispatch_cannot_use_it(
    make_engine, provider, db_path
):
    engine = make_engine(store=OutboxStore.open(db_path), dedup_window=300.0)
    engine.submit(items(["disk full"], "ops"))
    [again] = engine.submit(items(["disk full"], "ops"))  # deduplicated: nothing to send
    assert again.outcome is Outcome.DEDUPLICATED
    # Nothing owed, nothing held: another process sees the send recorded, the lane free.
    assert in_the_file(db_path) == ([("disk full", "delivered")], [None])
    assert provider.titles("ops") == ["disk full"]


def test_a_held_lane_is_still_given_back_when_the_next_write_fails(
    make_engine, db_path, monkeypatch
):
    import notifier.outbox.writing as store_module

    engine = make_engine(store=OutboxStore.open(db_path))
    engine.submit(items(["first"], "ops"))

    def broken(*args, **kwargs):
        raise OutboxError("disk full")

    monkeypatch.setattr(store_module, "write_and_claim_one", broken)
    with pytest.raises(OutboxError):
        engine.submit(items(["second"], "ops"))
    monkeypatch.undo()
    with engine.store.db.read("test") as conn:  # a read writes what is owed first
        assert conn.execute("SELECT lease_owner FROM channels").fetchall() == [(None,)]
    [later] = engine.submit(items(["third"], "ops"))
    assert later.outcome is Outcome.DELIVERED


def test_a_record_left_alone_is_written_a_moment_later(make_engine, db_path):
    engine = make_engine(store=OutboxStore.open(db_path))
    engine.submit(items(["disk full"], "ops"))
    other = sqlite3.connect(db_path)  # another process's view: no flush on read
    try:
        for _ in range(500):  # the background thread writes it within FLUSH_AFTER
            state = other.execute("SELECT state FROM deliveries").fetchone()[0]
            if state == "delivered":
                break
            threading.Event().wait(0.01)
        assert state == "delivered"
        assert other.execute("SELECT lease_owner FROM channels").fetchone() == (None,)
    finally:
        other.close()


def test_closing_writes_the_records_still_held(make_engine, db_path):
    engine = make_engine(store=OutboxStore.open(db_path))
    engine.submit(items(["disk full"], "ops"))
    engine.store.db._deferred.stop()  # no background flush: only close() can write it
    engine.close()
    reopened = OutboxStore.open(db_path)
    try:
        assert reopened.counts() == {"ops": {"delivered": 1}}
    finally:
        reopened.close()


def test_a_record_whose_transaction_rolls_back_is_kept_for_the_next(make_engine, db_path):
    engine = make_engine(store=OutboxStore.open(db_path))
    engine.submit(items(["disk full"], "ops"))
    engine.store.db._deferred.stop()
    try:
        with engine.store.db.write("test"):
            raise RuntimeError("the caller's own write failed")
    except RuntimeError:
        pass
    assert engine.store.counts() == {"ops": {"delivered": 1}}


def test_a_lone_delivery_on_an_idle_channel_is_in_the_file_in_flight_while_it_is_sent(
    make_engine, provider, db_path
):
    engine = make_engine(store=OutboxStore.open(db_path), dedup_window=300.0)
    engine.submit(items(["warm-up"], "ops"))
    engine.store.db.flush()  # its record, which would otherwise ride along
    seen = []
    provider.before_send = lambda channel, alert: seen.append(in_the_file(db_path))
    [receipt] = engine.submit(items(["disk full"], "ops"))
    assert receipt.outcome is Outcome.DELIVERED
    # Committed before the send, under the lane's lease: a crash now sends it again.
    [(rows, [holder])] = seen
    assert rows == [("warm-up", "delivered"), ("disk full", "inflight")]
    assert holder is not None


def test_a_repeat_within_the_dedup_window_is_not_written_on_the_short_path(make_engine, provider):
    engine = make_engine(dedup_window=300.0)
    [sent] = engine.submit(items(["disk full"], "ops"))
    [again] = engine.submit(items(["disk full"], "ops"))
    assert (sent.outcome, again.outcome) == (Outcome.DELIVERED, Outcome.DEDUPLICATED)
    assert again.details["delivery_id"] is None
    assert provider.titles("ops") == ["disk full"]
    assert engine.store.counts() == {"ops": {"delivered": 1}}


def test_a_lone_delivery_to_a_channel_out_of_slots_is_queued_not_sent(make_engine, provider, clock):
    engine = make_engine(rate_limits={"ops": RateLimit(1, 60.0)})
    [first] = engine.submit(items(["first"], "ops"))
    [second] = engine.submit(items(["second"], "ops"))
    assert (first.outcome, second.outcome) == (Outcome.DELIVERED, Outcome.QUEUED)
    assert provider.titles("ops") == ["first"]
    clock.advance(62)
    engine.drain()
    assert provider.titles("ops") == ["first", "second"]
    assert engine.store.counts() == {"ops": {"delivered": 2}}


def test_the_alert_given_to_submit_is_the_one_delivered(make_engine):
    seen = []

    def deliver(channel, a, context):
        seen.append(a)
        return Receipt(channel, Outcome.DELIVERED)

    engine = make_engine()
    engine._send = attrs.evolve(engine._send, deliverer=FunctionDeliverer(deliver))
    new = items(["disk full"], "ops")
    engine.submit(new)
    assert seen[0] is new[0].alert


def test_a_submit_sends_older_queued_deliveries_of_its_channel_first(make_engine, provider):
    engine = make_engine()
    engine.enqueue(items(["older"], "ops"))
    receipts = engine.submit(items(["newer"], "ops"))
    assert provider.titles("ops") == ["older", "newer"]
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED]


def test_a_submit_leaves_a_lane_another_worker_holds_alone(make_engine, provider, clock):
    engine = make_engine()
    engine.enqueue(items(["held"], "ops"))
    engine.store.claim_due(clock.time(), 10, "elsewhere:1:x", 60)  # a live worker has it
    [receipt] = engine.submit(items(["behind"], "ops"))
    assert receipt.outcome is Outcome.QUEUED
    assert provider.sent == []
    assert engine.store.counts() == {"ops": {"inflight": 1, "pending": 1}}


def test_a_submit_stops_once_its_own_deliveries_have_receipts(make_engine, provider):
    engine = make_engine()
    engine.enqueue(items(["backlog"], "audit"))
    engine.submit(items(["now"], "ops"))
    assert provider.titles("ops") == ["now"]
    assert provider.titles("audit") == []  # a worker's (or a later drain's) job
    engine.drain()
    assert provider.titles("audit") == ["backlog"]


def test_a_rate_limited_channel_logs_one_send_per_delivery(make_engine, provider, clock):
    engine = make_engine(rate_limits={"ops": RateLimit(2, 10.0)})
    receipts = [engine.submit(items([t], "ops"))[0] for t in ("a", "b", "c")]
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 2 + [Outcome.QUEUED]
    with engine.store.db.read("test") as conn:
        assert conn.execute("SELECT count(*) FROM sends").fetchone() == (2,)
    clock.advance(11.0)
    engine.drain()
    assert provider.titles("ops") == ["a", "b", "c"]


def test_a_failed_send_releases_the_lane_and_keeps_the_delivery_queued(make_engine, provider):
    engine = make_engine()
    provider.fail("ops")
    [receipt] = engine.submit(items(["a"], "ops"))
    assert receipt.outcome is Outcome.QUEUED
    with engine.store.db.read("test") as conn:
        assert conn.execute("SELECT lease_owner FROM channels").fetchall() == [(None,)]
    assert engine.store.counts() == {"ops": {"pending": 1}}


def test_a_repeat_written_behind_an_unsent_firing_is_judged_when_its_turn_comes(
    make_engine, provider
):
    engine = make_engine(dedup_window=300.0)
    first = alert("disk full", fingerprint="fp-1")
    repeat = alert(
        "disk full again", fingerprint="fp-1", starts_at=first.starts_at.replace(year=2020)
    )
    engine.enqueue([NewDelivery(first, "ops")])  # queued, not sent yet
    [receipt] = engine.submit([NewDelivery(repeat, "ops")])
    assert provider.titles("ops") == ["disk full"]
    assert receipt.outcome is Outcome.DEDUPLICATED
