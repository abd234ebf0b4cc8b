"""The store: batched writes, claims in per-channel order, leases, operator views."""

from __future__ import annotations

import subprocess
import sys

import pytest
from outbox_support import alert

from notifier.kinds import RateLimit
from notifier.models import Alert, Outcome, Status, delivery_key
from notifier.outbox import DeliveryState, NewDelivery, OutboxStore, owner_alive
from notifier.outbox.attempts import LEASE_LOST
from notifier.outbox.policy import CircuitBreaker
from notifier.ratelimit import window

T0 = 1_000.0


def queue(store, titles, channel="ops", now=T0, **kwargs):
    return store.enqueue_many([NewDelivery(alert(t), channel) for t in titles], now=now, **kwargs)


def test_enqueue_many_returns_one_result_per_item_with_consecutive_ids(store):
    results = queue(store, ["a", "b", "c"])
    assert [r.outcome for r in results] == [Outcome.QUEUED] * 3
    assert [r.id for r in results] == [1, 2, 3]
    more = queue(store, ["d"])
    assert more[0].id == 4


def test_each_delivery_carries_the_dispatchers_idempotency_key(store):
    a = alert("disk")
    [result] = store.enqueue_many([NewDelivery(a, "ops")], now=T0)
    assert result.key == delivery_key(a, "ops")
    assert store.get([result.id])[result.id].key == result.key


def test_the_same_alert_queued_twice_is_written_once(store):
    a = alert("disk")
    first = store.enqueue_many([NewDelivery(a, "ops"), NewDelivery(a, "ops")], now=T0)
    again = store.enqueue_many([NewDelivery(a, "ops")], now=T0 + 5)
    assert first[0].id == first[1].id == again[0].id
    assert (first[0].coalesced, first[1].coalesced, again[0].coalesced) == (False, True, True)
    assert store.counts() == {"ops": {"pending": 1}}


def test_one_bad_item_leaves_the_outbox_untouched(store):
    queue(store, ["kept"])
    with pytest.raises(TypeError):
        store.enqueue_many([NewDelivery(alert("x"), "ops"), "not a delivery"], now=T0)
    assert store.counts() == {"ops": {"pending": 1}}


def test_a_claim_takes_each_channels_due_prefix_in_id_order(store):
    queue(store, ["a1", "a2", "a3"], "a")
    queue(store, ["b1", "b2"], "b")
    claims = store.claim_due(T0, 2, "w1", 60)
    assert {c.channel: [d.alert().title for d in c.deliveries] for c in claims} == {
        "a": ["a1", "a2"],
        "b": ["b1", "b2"],
    }
    assert all(d.state is DeliveryState.INFLIGHT for c in claims for d in c.deliveries)


def test_a_channel_held_by_one_worker_is_not_claimed_by_another(store):
    queue(store, ["a1", "a2"])
    [claim] = store.claim_due(T0, 1, "w1", 60)
    assert store.claim_due(T0, 10, "w2", 60) == []
    store.end_lane("ops", "w1", T0)  # w1 gives the lane back: its claim is pending again
    [claim] = store.claim_due(T0, 10, "w2", 60)
    assert [d.alert().title for d in claim.deliveries] == ["a1", "a2"]


def test_a_delivery_waiting_out_its_backoff_holds_back_only_its_own_alert(store):
    firing = alert("disk full", labels={"host": "db1"})
    resolved = alert("disk full", labels={"host": "db1"}, status="resolved")
    other = alert("cpu hot")
    store.enqueue_many([NewDelivery(a, "ops") for a in (firing, resolved, other)], now=T0)
    [claim] = store.claim_due(T0, 10, "w", 60)
    first = claim.deliveries[0]
    assert store.mark_retry(first, "w", T0, T0 + 30, "busy")
    store.end_lane("ops", "w", T0)
    [claim] = store.claim_due(T0 + 10, 10, "w", 60)
    # The resolution waits behind its firing; the other alert does not.
    assert [d.alert().title for d in claim.deliveries] == ["cpu hot"]
    store.end_lane("ops", "w", T0 + 10)
    [claim] = store.claim_due(T0 + 30, 10, "w", 60)
    assert [(d.alert().title, d.status) for d in claim.deliveries] == [
        ("disk full", "firing"),
        ("disk full", "resolved"),
        ("cpu hot", "firing"),
    ]
    assert claim.deliveries[0].attempts == 1


def test_in_flight_deliveries_are_claimed_again_after_their_lease_expires(store):
    queue(store, ["a", "b"])
    store.claim_due(T0, 10, "crashed", 60)  # the worker dies without a word
    assert store.claim_due(T0 + 59, 10, "w2", 60) == []
    [claim] = store.claim_due(T0 + 60, 10, "w2", 60)
    assert [d.alert().title for d in claim.deliveries] == ["a", "b"]
    assert all(d.lease_owner == "w2" for d in claim.deliveries)


def test_a_worker_whose_lease_was_taken_over_cannot_record_results(store):
    queue(store, ["a"])
    [old] = store.claim_due(T0, 10, "slow", 60)
    store.claim_due(T0 + 61, 10, "fresh", 60)
    d = old.deliveries[0]
    assert store.start_attempt("ops", "slow", [d.id], T0 + 62, 60) == LEASE_LOST
    assert not store.mark_delivered(d, "slow", T0 + 62)
    assert not store.mark_dead(d, "slow", T0 + 62, "x")
    assert store.get([d.id])[d.id].lease_owner == "fresh"


def test_deliveries_of_a_process_that_is_gone_are_recovered_at_once(store):
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    import socket

    dead = f"{socket.gethostname()}:{child.stdout.strip()}:abc"
    queue(store, ["a", "b"])
    store.claim_due(T0, 10, dead, 3600)
    assert not owner_alive(dead)
    assert store.recover_orphans(owner_alive, T0) == 2
    [claim] = store.claim_due(T0, 10, "w2", 60)
    assert len(claim.deliveries) == 2


def test_workers_on_other_hosts_or_still_running_are_left_alone(store):
    import os
    import socket

    assert owner_alive(f"elsewhere:{os.getpid() + 1}:x")
    assert owner_alive(f"{socket.gethostname()}:{os.getpid()}:x")
    queue(store, ["a"])
    store.claim_due(T0, 10, f"{socket.gethostname()}:{os.getpid()}:x", 60)
    assert store.recover_orphans(owner_alive, T0) == 0


def test_claims_never_exceed_the_free_slots_of_the_rate_window(store):
    limit = {"ops": RateLimit(3, 60)}
    queue(store, [f"a{i}" for i in range(10)])
    [claim] = store.claim_due(T0, 100, "w", 60, rate_limits=limit)
    assert len(claim.deliveries) == 3
    ids = [d.id for d in claim.deliveries]
    for i, d in enumerate(claim.deliveries):
        assert store.start_attempt("ops", "w", ids[i:], T0 + i, 60, limit["ops"]) == 0
        store.mark_delivered(d, "w", T0 + i)
    store.end_lane("ops", "w", T0 + 3)
    span = window(limit["ops"])  # 60 s and the jitter margin
    assert span == 61
    assert store.claim_due(T0 + span - 0.1, 100, "w", 60, rate_limits=limit) == []
    [claim] = store.claim_due(T0 + span, 100, "w", 60, rate_limits=limit)
    assert len(claim.deliveries) == 1  # only the slot of the send at T0 has left the window


def test_a_send_slot_is_refused_with_the_wait_until_the_oldest_leaves_the_window(store):
    limit = RateLimit(2, 10)
    queue(store, ["a", "b", "c"])
    [claim] = store.claim_due(T0, 10, "w", 60)
    ids = [d.id for d in claim.deliveries]
    assert store.start_attempt("ops", "w", ids, T0, 60, limit) == 0
    assert store.start_attempt("ops", "w", ids[1:], T0 + 4, 60, limit) == 0
    wait = store.start_attempt("ops", "w", ids[2:], T0 + 5, 60, limit)
    assert wait == pytest.approx(T0 + window(limit) - (T0 + 5))  # 10 s + 0.5 s margin


def test_an_open_circuit_keeps_the_channel_from_being_claimed_then_lets_one_probe(store):
    breaker = CircuitBreaker(threshold=2, cooldown=30)
    queue(store, ["a", "b", "c"])
    for _ in range(2):
        [claim] = store.claim_due(T0, 10, "w", 60, breaker=breaker)
        store.mark_retry(claim.deliveries[0], "w", T0, T0, "down", breaker=breaker)
        store.end_lane("ops", "w", T0)
    assert store.claim_due(T0 + 29, 10, "w", 60, breaker=breaker) == []
    [probe] = store.claim_due(T0 + 30, 10, "w", 60, breaker=breaker)
    assert probe.probe and len(probe.deliveries) == 1
    store.mark_delivered(probe.deliveries[0], "w", T0 + 30)
    store.end_lane("ops", "w", T0 + 30)
    [claim] = store.claim_due(T0 + 30, 10, "w", 60, breaker=breaker)
    assert not claim.probe and len(claim.deliveries) == 2


def test_counts_are_by_channel_and_state(store):
    queue(store, ["a", "b"], "ops")
    queue(store, ["c"], "audit")
    [claim, _] = sorted(store.claim_due(T0, 1, "w", 60), key=lambda c: c.channel != "ops")
    store.mark_dead(claim.deliveries[0], "w", T0, "refused")
    assert store.counts() == {
        "audit": {"inflight": 1},
        "ops": {"dead": 1, "pending": 1},
    }


def test_dead_letters_keep_their_error_with_secrets_redacted(store):
    from notifier.redact import Secret

    Secret("s3cr3t-webhook-key")
    queue(store, ["a"])
    [claim] = store.claim_due(T0, 1, "w", 60)
    store.mark_dead(claim.deliveries[0], "w", T0, "POST /hook?key=s3cr3t-webhook-key: 400")
    [dead] = store.dead_letters()
    assert "s3cr3t" not in dead.last_error
    assert "***" in dead.last_error


def test_retrying_dead_letters_queues_them_again_from_scratch(store):
    queue(store, ["a", "b"])
    [claim] = store.claim_due(T0, 10, "w", 60)
    for d in claim.deliveries:
        store.mark_dead(d, "w", T0, "refused")
    store.end_lane("ops", "w", T0)
    assert store.retry_dead(T0 + 100, ids=[claim.deliveries[1].id]) == 1
    [again] = store.claim_due(T0 + 100, 10, "w", 60)
    assert [(d.alert().title, d.attempts, d.enqueued_at) for d in again.deliveries] == [
        ("b", 0, T0 + 100)
    ]
    store.end_lane("ops", "w", T0 + 100)
    assert store.retry_dead(T0 + 200) == 1
    assert store.counts() == {"ops": {"pending": 2}}


def test_purging_removes_dead_letters_by_id_or_all_and_delivered_ones_by_age(store):
    queue(store, ["a", "b", "c", "d"])
    [claim] = store.claim_due(T0, 10, "w", 60)
    a, b, c, d = claim.deliveries
    store.mark_dead(a, "w", T0, "x")
    store.mark_dead(b, "w", T0, "x")
    store.mark_delivered(c, "w", T0)
    store.mark_delivered(d, "w", T0 + 50)
    assert store.purge(ids=[a.id]) == 1
    assert store.purge() == 1
    assert store.purge(DeliveryState.DELIVERED, older_than=T0 + 10) == 1
    assert store.counts() == {"ops": {"delivered": 1}}
    with pytest.raises(ValueError):
        store.purge(DeliveryState.PENDING)


def test_the_sweep_by_age_stops_at_the_first_young_delivery_and_keeps_the_newest_row(store):
    queue(store, ["a", "b", "stuck"])
    queue(store, ["young"], now=T0 + 100)
    [claim] = store.claim_due(T0 + 100, 10, "w", 60)
    a, b, _, young = claim.deliveries
    store.mark_delivered(a, "w", T0 + 1)
    store.mark_delivered(b, "w", T0 + 1)
    store.mark_delivered(young, "w", T0 + 101)
    store.end_lane("ops", "w", T0 + 101)
    # Older than T0 + 50: a and b; "stuck" is still queued and "young" was written since.
    assert store.purge(DeliveryState.DELIVERED, older_than=T0 + 50) == 2
    assert store.counts() == {"ops": {"delivered": 1, "pending": 1}}
    # Everything is old now, but the newest row stays: ids are never given out twice.
    assert store.purge(DeliveryState.DELIVERED, older_than=T0 + 1000) == 0
    assert store.counts() == {"ops": {"delivered": 1, "pending": 1}}


def test_a_resolved_alert_has_its_own_key(store):
    firing = alert("disk")
    resolved = alert("disk", status=Status.RESOLVED, starts_at=firing.starts_at)
    results = store.enqueue_many([NewDelivery(firing, "ops"), NewDelivery(resolved, "ops")], now=T0)
    assert results[0].key != results[1].key
    assert store.counts() == {"ops": {"pending": 2}}


@pytest.mark.slow
def test_a_batch_of_twenty_thousand_deliveries_is_committed_whole(db_path):
    """How fast it is written is measured by the benchmark (scenario 4, one transaction)."""
    store = OutboxStore.open(db_path)
    alerts = [
        Alert(
            title=f"disk full on host{i}", labels={"host": f"h{i}", "team": "ops"}, body="x" * 200
        )
        for i in range(10_000)
    ]
    items = [NewDelivery(a, c) for a in alerts for c in ("ops", "audit")]
    results = store.enqueue_many(items, now=1_000.0, dedup_window=300)
    store.close()
    reopened = OutboxStore.open(db_path)
    assert reopened.counts() == {"audit": {"pending": 10_000}, "ops": {"pending": 10_000}}
    assert len({r.id for r in results}) == 20_000
    reopened.close()


def test_the_lease_holder_claims_more_of_its_channel_but_not_what_it_has_in_flight(store):
    queue(store, ["a"])
    [first] = store.claim_due(T0, 1, "w1", 60)
    queue(store, ["b", "a"], now=T0 + 1)  # another alert, and a second delivery of "a"
    # The holder goes on with "b"; the in-flight "a" holds back only its own alert.
    [second] = store.claim_due(T0 + 1, 10, "w1", 60)
    assert [d.alert().title for d in second.deliveries] == ["b"]
    assert store.claim_due(T0 + 1, 10, "w2", 60) == []  # other workers still wait
    # Ending the second claim puts back none of the first's, and keeps the lease.
    store.end_lane("ops", "w1", T0 + 2, [d.id for d in second.deliveries])
    assert store.get([first.deliveries[0].id])[1].state is DeliveryState.INFLIGHT
    assert store.claim_due(T0 + 2, 10, "w2", 60) == []
    # The first claim's end is the holder's last: the lease goes with it.
    store.end_lane("ops", "w1", T0 + 3, [d.id for d in first.deliveries])
    [taken] = store.claim_due(T0 + 3, 10, "w2", 60)
    assert [d.alert().title for d in taken.deliveries] == ["a", "b", "a"]


def test_while_its_probe_is_out_the_holder_claims_nothing_more_of_the_channel(store):
    breaker = CircuitBreaker(threshold=1, cooldown=30)
    queue(store, ["a", "b", "c"])
    [claim] = store.claim_due(T0, 1, "w1", 60, breaker=breaker)
    store.mark_retry(claim.deliveries[0], "w1", T0, T0 + 1, "down", breaker=breaker)
    store.end_lane("ops", "w1", T0, [claim.deliveries[0].id])
    # Cooled down: one probe goes; until it tells, no second one beside it.
    [probe] = store.claim_due(T0 + 31, 10, "w1", 60, breaker=breaker)
    assert probe.probe and len(probe.deliveries) == 1
    assert store.claim_due(T0 + 31, 10, "w1", 60, breaker=breaker) == []
