"""The engine: write first, deliver due work in order, retry over time, recover crashes."""

from __future__ import annotations

import threading

import attrs
from outbox_support import alert

from notifier.groups import AlertGroup
from notifier.kinds import RateLimit
from notifier.models import Outcome, Receipt
from notifier.outbox import NewDelivery, OutboxStore
from notifier.outbox.engine import FunctionDeliverer


def items(titles, *channels, **fields):
    return [NewDelivery(alert(t, **fields), c) for t in titles for c in channels]


def test_submit_writes_then_delivers_and_returns_a_receipt_per_delivery(make_engine, provider):
    engine = make_engine()
    receipts = engine.submit(items(["a", "b"], "ops", "audit"))
    assert [(r.channel, r.outcome) for r in receipts] == [
        ("ops", Outcome.DELIVERED), ("audit", Outcome.DELIVERED),
        ("ops", Outcome.DELIVERED), ("audit", Outcome.DELIVERED),
    ]  # fmt: skip
    assert engine.store.counts() == {"audit": {"delivered": 2}, "ops": {"delivered": 2}}
    assert all(r.details["delivery_id"] for r in receipts)
    [sent] = [s for s in provider.sent if (s.channel, s.title) == ("ops", "a")]
    assert sent.context.attempt == 1
    assert sent.context.idempotency_key == receipts[0].details["idempotency_key"]


def test_retry_after_from_the_provider_sets_the_next_attempt(make_engine, provider, clock):
    start = clock.time()
    engine = make_engine(backoff_initial=1)
    provider.fail("ops", retry_after=42)
    [receipt] = engine.submit(items(["a"], "ops"))
    assert receipt.outcome is Outcome.QUEUED
    assert receipt.next_attempt_at == start + 42
    clock.advance(41)
    engine.drain()
    assert provider.sent == []
    clock.advance(1)
    engine.drain()
    assert provider.titles("ops") == ["a"]


def test_a_retryable_failure_is_retried_with_growing_capped_backoff(make_engine, provider, clock):
    start = clock.time()
    engine = make_engine(backoff_initial=1, backoff_max=4, breaker_threshold=0)
    provider.fail("ops", 5)
    engine.submit(items(["a"], "ops"))
    for _ in range(6):
        [wake] = engine.store.wakes(clock.time()) or [None]
        if wake is None:
            break
        clock.advance(max(wake.ready_at - clock.time(), 0))
        engine.drain()
    gaps = [b.at - a.at for a, b in zip(provider.attempts, provider.attempts[1:], strict=False)]
    assert [a.context.attempt for a in provider.attempts] == [1, 2, 3, 4, 5, 6]
    assert all(top / 2 <= gap <= top for gap, top in zip(gaps, [1, 2, 4, 4, 4], strict=True))
    assert provider.titles("ops") == ["a"]
    assert provider.attempts[0].at == start


def test_a_permanent_failure_is_a_dead_letter_and_the_channel_moves_on(make_engine, provider):
    engine = make_engine()
    provider.fail("ops", retryable=False, error="invalid webhook key")
    receipts = engine.submit(items(["bad", "good"], "ops"))
    assert [r.outcome for r in receipts] == [Outcome.FAILED, Outcome.DELIVERED]
    [dead] = engine.store.dead_letters()
    assert dead.last_error == "invalid webhook key"


def test_after_max_attempts_the_delivery_is_dead_with_its_last_error(make_engine, provider, clock):
    engine = make_engine(max_attempts=3, breaker_threshold=0)
    provider.fail("ops", 10, error="503 from upstream")
    engine.submit(items(["a"], "ops"))
    for _ in range(5):
        clock.advance(3600)
        engine.drain()
    [dead] = engine.store.dead_letters()
    assert dead.attempts == 3
    assert dead.last_error == "gave up after 3 attempts: 503 from upstream"
    assert len(provider.attempts) == 3


def test_a_delivery_older_than_max_age_is_dead_without_another_attempt(
    make_engine, provider, clock
):
    engine = make_engine(max_age=600, breaker_threshold=0)
    provider.fail("ops", retry_after=500)
    engine.submit(items(["a"], "ops"))
    provider.fail("ops", retry_after=500)  # the second answer would reach past max_age
    clock.advance(500)
    engine.drain()
    [dead] = engine.store.dead_letters()
    assert "max_age" in dead.last_error
    assert len(provider.attempts) == 2


def test_a_delivery_stuck_past_max_age_behind_an_open_circuit_is_dead_on_claim(
    make_engine, provider, clock
):
    engine = make_engine(max_age=100, breaker_threshold=1, breaker_cooldown=50)
    provider.fail("ops", retry_after=10)
    engine.submit(items(["a"], "ops"))
    clock.advance(200)
    report = engine.drain()
    assert report.outcomes == {"failed": 1}
    assert len(provider.attempts) == 1
    assert "not delivered within max_age" in engine.store.dead_letters()[0].last_error


def test_a_channel_down_for_a_while_receives_everything_once_up(make_engine, provider, clock):
    engine = make_engine(
        backoff_initial=1, backoff_max=30, breaker_threshold=3, breaker_cooldown=20
    )
    provider.down.add("ops")
    titles = [f"a{i}" for i in range(20)]
    for chunk in range(0, 20, 5):
        receipts = engine.submit(items(titles[chunk : chunk + 5], "ops", "audit"))
        assert {r.outcome for r in receipts if r.channel == "ops"} == {Outcome.QUEUED}
        clock.advance(30)
        engine.drain()
    assert provider.titles("audit") == titles  # the other channel never waited
    assert provider.titles("ops") == []
    provider.down.discard("ops")
    for _ in range(10):
        clock.advance(30)
        engine.drain()
    # Different alerts: each once, not necessarily in the order written.
    assert sorted(provider.titles("ops")) == sorted(titles)
    assert engine.store.counts()["ops"] == {"delivered": 20}


def test_deliveries_in_flight_when_a_worker_died_are_retried_after_its_lease(
    make_engine, provider, clock, db_path
):
    crashed = make_engine(store=OutboxStore.open(db_path), lease=120)
    crashed.enqueue(items(["a", "b"], "ops"))
    crashed.store.claim_due(clock.time(), 10, "elsewhere:1:dead", 120)  # then it died
    survivor = make_engine(store=OutboxStore.open(db_path), lease=120)
    survivor.drain()
    assert provider.sent == []
    clock.advance(120)
    survivor.drain()
    assert provider.titles("ops") == ["a", "b"]


def test_an_unreadable_stored_alert_becomes_a_dead_letter(make_engine, provider):
    engine = make_engine()
    [queued] = engine.enqueue(items(["a"], "ops"))
    with engine.store.db.write("test") as conn:
        conn.execute("UPDATE deliveries SET alert = '{not json' WHERE id = ?", (queued.id,))
    engine.drain()
    [dead] = engine.store.dead_letters()
    assert dead.last_error.startswith("stored alert is unreadable")
    assert provider.attempts == []


def test_an_unreadable_stored_group_becomes_a_dead_letter_and_the_rest_go_on(make_engine, provider):
    engine = make_engine()
    grouped = NewDelivery(alert("group"), "ops", group=AlertGroup((alert("x"), alert("y"))))
    first, _ = engine.enqueue([grouped, *items(["b"], "ops")])
    with engine.store.db.write("test") as conn:
        conn.execute("UPDATE deliveries SET alert_group = '[1]' WHERE id = ?", (first.id,))
    engine.drain()
    [dead] = engine.store.dead_letters()
    assert dead.id == first.id and dead.last_error.startswith("stored alert is unreadable")
    assert "not a group of alerts" in dead.last_error
    assert provider.titles("ops") == ["b"]


def test_a_deliver_function_that_raises_counts_as_a_retryable_failure(make_engine, clock):
    engine = make_engine()
    calls = []

    def broken(channel, a, context):
        calls.append(context.attempt)
        if len(calls) == 1:
            raise RuntimeError("plugin bug")
        return Receipt(channel, Outcome.DELIVERED)

    engine._send = attrs.evolve(engine._send, deliverer=FunctionDeliverer(broken))
    [receipt] = engine.submit(items(["a"], "ops"))
    assert receipt.outcome is Outcome.QUEUED
    assert "RuntimeError: plugin bug" in receipt.error
    clock.advance(3600)
    engine.drain()
    assert calls == [1, 2]


def test_drain_leaves_deliveries_that_are_not_due_yet(make_engine, provider, clock):
    engine = make_engine(backoff_initial=100, backoff_max=100)
    provider.fail("ops")
    engine.submit(items(["a"], "ops"))
    report = engine.drain()
    assert report.waited == 0
    assert engine.store.counts() == {"ops": {"pending": 1}}


def test_run_forever_delivers_until_stopped(make_engine, provider):
    engine = make_engine(poll_interval=0.01)
    engine.enqueue(items(["a", "b"], "ops"))
    stop = threading.Event()
    worker = threading.Thread(target=engine.run_forever, args=(stop,))
    worker.start()
    for _ in range(500):
        if len(provider.sent) == 2:
            break
        stop.wait(0.01)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert provider.titles("ops") == ["a", "b"]


def test_maintenance_forgets_old_sends_and_delivered_rows(make_engine, provider, clock):
    engine = make_engine(keep_delivered=60, rate_limits={"ops": RateLimit(5, 10)})
    engine.submit(items(["a"], "ops"))
    [newest] = engine.submit(items(["b"], "ops"))
    clock.advance(61)
    engine.maintain(force=True)
    # The newest row stays, so the next delivery's id is not one given out before.
    assert engine.store.counts() == {"ops": {"delivered": 1}}
    with engine.store.db.read("test") as conn:
        assert conn.execute("SELECT count(*) FROM sends").fetchone()[0] == 0
    [later] = engine.submit(items(["c"], "ops"))
    assert later.details["delivery_id"] == newest.details["delivery_id"] + 1


def test_a_background_worker_delivers_until_the_engine_closes(make_engine, provider):
    engine = make_engine(poll_interval=0.01)
    thread = engine.start_background()
    assert engine.start_background() is thread
    engine.enqueue(items(["a"], "ops"))
    for _ in range(500):
        if provider.sent:
            break
        threading.Event().wait(0.01)
    engine.close()
    assert not thread.is_alive()
    assert provider.titles("ops") == ["a"]


def test_concurrent_submits_to_one_channel_all_deliver_now_in_order(make_engine, clock):
    inside, release = threading.Event(), threading.Event()
    sent = []

    def slow(channel, a, context):
        if a.title == "a":  # the first delivery takes a while
            inside.set()
            release.wait(5)
        sent.append(a.title)
        return Receipt(channel, Outcome.DELIVERED)

    engine = make_engine()
    engine._send = attrs.evolve(engine._send, deliverer=FunctionDeliverer(slow))
    results = {}
    first = threading.Thread(target=lambda: results.update(a=engine.submit(items(["a"], "ops"))))
    first.start()
    inside.wait(5)
    # Other alerts to the channel do not wait for it: only its own alert would.
    second = threading.Thread(
        target=lambda: results.update(b=engine.submit(items(["b", "c"], "ops")))
    )
    second.start()
    second.join(5)
    assert [r.outcome for r in results["b"]] == [Outcome.DELIVERED] * 2
    assert sent == ["b", "c"]
    release.set()
    first.join(5)
    assert [r.outcome for r in results["a"]] == [Outcome.DELIVERED]
    assert sent == ["b", "c", "a"]
