"""The engine's rules end to end: rate-limit pacing, dedup and resolve, circuit breaking."""

from __future__ import annotations

from outbox_support import alert

from notifier.kinds import RateLimit
from notifier.models import Outcome, Status
from notifier.outbox import NewDelivery, OutboxStore
from notifier.ratelimit import window


def items(titles, *channels, **fields):
    return [NewDelivery(alert(t, **fields), c) for t in titles for c in channels]


def windows_hold(times, limit):
    """Whether no window of ``limit.per`` seconds holds more than ``limit.count`` sends."""
    times = sorted(times)
    return all(sum(1 for u in times if t <= u < t + limit.per) <= limit.count for t in times)


def test_a_burst_beyond_the_rate_limit_arrives_paced_with_nothing_dropped(
    make_engine, provider, clock
):
    limit = RateLimit(5, 60)
    engine = make_engine(rate_limits={"robot": limit})
    receipts = engine.submit(items([f"a{i}" for i in range(23)], "robot"))
    assert [r.outcome for r in receipts].count(Outcome.DELIVERED) == 5
    assert all(r.outcome is Outcome.QUEUED for r in receipts[5:])
    report = engine.drain()
    assert provider.titles("robot") == [f"a{i}" for i in range(23)]
    assert windows_hold([s.at for s in provider.sent], limit)
    assert report.waited == 4 * window(limit)  # five windows, exactly as long as needed
    assert engine.store.counts() == {"robot": {"delivered": 23}}


def test_the_rate_limit_holds_across_engines_sharing_one_file(
    make_engine, provider, db_path, clock
):
    limit = RateLimit(3, 10)
    first = make_engine(store=OutboxStore.open(db_path), rate_limits={"robot": limit})
    second = make_engine(store=OutboxStore.open(db_path), rate_limits={"robot": limit})
    first.enqueue(items([f"a{i}" for i in range(12)], "robot"))
    for _ in range(40):  # windows start at 0, 10, 20 and 30 s
        first.process()
        second.process()
        clock.advance(1)
    assert len(provider.sent) == 12
    assert windows_hold([s.at for s in provider.sent], limit)
    assert provider.titles("robot") == [f"a{i}" for i in range(12)]


def test_a_provider_rate_limit_answer_pauses_the_channel_past_its_window(
    make_engine, provider, clock
):
    start = clock.time()
    engine = make_engine(rate_limits={"robot": RateLimit(20, 60)})
    provider.fail("robot", rate_limited=True, error="45009 api freq out of limit")
    [receipt] = engine.submit(items(["a"], "robot"))
    assert receipt.outcome is Outcome.QUEUED
    assert receipt.next_attempt_at == start + 60  # no Retry-After: the window
    engine.drain()
    assert [s.at - start for s in provider.attempts] == [0, 60]
    delivered = engine.store.get([receipt.details["delivery_id"]])
    assert delivered[receipt.details["delivery_id"]].attempts == 1  # the refusal did not count


def test_the_circuit_opens_keeps_deliveries_queued_and_one_probe_closes_it(
    make_engine, provider, clock
):
    engine = make_engine(backoff_initial=1, backoff_max=1, breaker_threshold=3, breaker_cooldown=60)
    provider.fail("ops", 3)
    engine.submit(items(["a", "b", "c"], "ops"))
    for _ in range(2):
        clock.advance(1)
        engine.drain()
    assert len(provider.attempts) == 3  # the third failure opened the circuit
    clock.advance(30)
    engine.drain()
    assert len(provider.attempts) == 3  # open: nothing tried, nothing lost
    assert engine.store.counts() == {"ops": {"pending": 3}}
    clock.advance(30)
    engine.process()  # cooled down: one probe only
    assert len(provider.attempts) == 4
    assert provider.titles("ops") == ["a"]
    engine.drain()  # the probe closed the circuit
    assert provider.titles("ops") == ["a", "b", "c"]


def test_a_failed_probe_opens_the_circuit_for_another_cooldown(make_engine, provider, clock):
    engine = make_engine(backoff_initial=1, backoff_max=1, breaker_threshold=1, breaker_cooldown=60)
    provider.fail("ops", 2)
    engine.submit(items(["a"], "ops"))
    clock.advance(60)
    engine.drain()  # the probe fails
    clock.advance(59)
    engine.drain()
    assert len(provider.attempts) == 2
    clock.advance(1)
    engine.drain()
    assert provider.titles("ops") == ["a"]


def test_the_same_firing_alert_within_the_dedup_window_is_not_sent_again(
    make_engine, provider, clock
):
    engine = make_engine(dedup_window=300)
    a = alert("disk full", labels={"host": "db1"})
    assert engine.submit([NewDelivery(a, "ops")])[0].outcome is Outcome.DELIVERED
    clock.advance(100)
    again = alert("disk full", labels={"host": "db1"})  # a new start time, same fingerprint
    [receipt] = engine.submit([NewDelivery(again, "ops")])
    assert receipt.outcome is Outcome.DEDUPLICATED
    assert receipt.ok
    clock.advance(201)
    assert engine.submit([NewDelivery(again, "ops")])[0].outcome is Outcome.DELIVERED
    assert provider.titles("ops") == ["disk full", "disk full"]


def test_a_resolved_alert_is_sent_once_when_it_resolves(make_engine, provider, clock):
    engine = make_engine(dedup_window=300)
    firing = alert("disk full")
    resolved = alert("disk full", status=Status.RESOLVED, starts_at=firing.starts_at)
    outcomes = []
    for a in (firing, resolved, resolved, firing):
        outcomes += [r.outcome for r in engine.submit([NewDelivery(a, "ops")])]
        clock.advance(10)
    clock.advance(10_000)
    outcomes += [r.outcome for r in engine.submit([NewDelivery(resolved, "ops")])]
    assert outcomes == [
        Outcome.DELIVERED,  # firing
        Outcome.DELIVERED,  # resolved: sent when it resolves
        Outcome.DEDUPLICATED,  # resolved again: once is enough
        Outcome.DELIVERED,  # fires again after resolving: news
        Outcome.DELIVERED,  # and resolves again
    ]


def test_the_dedup_window_remembers_sends_whose_delivered_rows_were_purged(
    make_engine, provider, clock
):
    engine = make_engine(dedup_window=300, keep_delivered=0)
    firing = alert("disk full")
    resolved = alert("disk full", status=Status.RESOLVED, starts_at=firing.starts_at)
    engine.submit([NewDelivery(firing, "ops")])
    engine.submit([NewDelivery(resolved, "ops")])
    clock.advance(1)
    engine.submit([NewDelivery(alert("newest"), "ops")])  # the row a sweep keeps
    clock.advance(1)
    engine.maintain(force=True)
    assert engine.store.counts() == {"ops": {"delivered": 1}}  # their rows are gone
    # What they recorded is not: the resolution is still sent only once.
    [again] = engine.submit([NewDelivery(resolved, "ops")])
    assert again.outcome is Outcome.DEDUPLICATED
    # A day on, the window has long forgotten the firing: it is news again.
    clock.advance(86_401)
    engine.maintain(force=True)
    with engine.store.db.read("test") as conn:
        assert conn.execute("SELECT count(*) FROM dedup").fetchone()[0] == 0
    assert engine.submit([NewDelivery(firing, "ops")])[0].outcome is Outcome.DELIVERED
    assert provider.titles("ops") == ["disk full", "disk full", "newest", "disk full"]


def test_a_repeat_queued_behind_a_pending_resolution_is_judged_when_its_turn_comes(
    make_engine, provider, clock
):
    engine = make_engine(dedup_window=300, breaker_threshold=0, backoff_initial=5, backoff_max=5)
    firing = alert("disk full")
    engine.submit([NewDelivery(firing, "ops")])
    provider.fail("ops")
    resolved = alert("disk full", status=Status.RESOLVED, starts_at=firing.starts_at)
    assert engine.submit([NewDelivery(resolved, "ops")])[0].outcome is Outcome.QUEUED
    refired = alert("disk full")  # fires again while the resolution waits
    assert engine.submit([NewDelivery(refired, "ops")])[0].outcome is Outcome.QUEUED
    clock.advance(5)
    engine.drain()
    assert len(provider.sent) == 3  # firing, resolved, firing again: the last word is right
