"""Backoff, circuit breaker and dedup rules as pure functions."""

from __future__ import annotations

import random

import pytest

from notifier.outbox.policy import Backoff, Circuit, CircuitBreaker, CircuitState, is_duplicate


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap():
    backoff = Backoff(initial=1, maximum=60)
    assert [backoff.ceiling(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_jittered_delays_stay_between_half_and_all_of_the_ceiling():
    backoff, rng = Backoff(initial=2, maximum=100), random.Random(1)
    for attempt in range(1, 12):
        top = backoff.ceiling(attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(top / 2 <= d <= top for d in delays)
        assert len(set(delays)) > 1  # jitter: retries spread apart


def test_the_cap_holds_for_absurd_attempt_numbers():
    backoff = Backoff(initial=1, maximum=600)
    assert backoff.ceiling(10**9) == 600
    assert backoff.delay(10**9, random.Random(0)) <= 600


def test_retry_after_wins_over_the_computed_delay_even_beyond_the_cap():
    backoff = Backoff(initial=1, maximum=60)
    assert backoff.delay(1, random.Random(0), retry_after=120) == 120
    assert backoff.delay(9, random.Random(0), retry_after=0) == 0


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(multiplier=0.5)


def test_the_breaker_opens_after_threshold_failures_in_a_row():
    breaker, state = CircuitBreaker(threshold=3, cooldown=30), CircuitState()
    for _ in range(2):
        state = breaker.on_failure(state, 100)
        assert state.circuit is Circuit.CLOSED
        assert breaker.admits(state, 100) is None
    state = breaker.on_failure(state, 100)
    assert (state.circuit, state.open_until) == (Circuit.OPEN, 130)
    assert breaker.admits(state, 129.9) == 0
    assert breaker.admits(state, 130) == 1


def test_a_failed_probe_reopens_and_a_success_closes():
    breaker = CircuitBreaker(threshold=1, cooldown=10)
    probing = CircuitState(Circuit.HALF_OPEN, 1, 10)
    assert breaker.on_failure(probing, 50) == CircuitState(Circuit.OPEN, 2, 60)
    assert breaker.on_success(probing) == CircuitState()


def test_threshold_zero_turns_the_breaker_off():
    breaker = CircuitBreaker(threshold=0)
    state = CircuitState()
    for _ in range(100):
        state = breaker.on_failure(state, 0)
    assert breaker.admits(state, 0) is None


@pytest.mark.parametrize(
    ("status", "sent", "now", "duplicate"),
    [
        ("firing", {}, 100, False),
        ("firing", {"firing": 50}, 100, True),  # within the 300 s window
        ("firing", {"firing": 50}, 350, False),  # the window has passed
        ("firing", {"firing": 50, "resolved": 60}, 100, False),  # fired again after resolving
        ("resolved", {}, 100, False),
        ("resolved", {"firing": 50}, 100, False),  # resolves: sent once
        ("resolved", {"firing": 50, "resolved": 60}, 100, True),
        ("resolved", {"firing": 50, "resolved": 60}, 10_000, True),  # once, not once a window
        ("resolved", {"firing": 70, "resolved": 60}, 100, False),  # resolves again after refiring
    ],
)
def test_dedup_rules(status, sent, now, duplicate):
    assert is_duplicate(status, sent, now, 300) is duplicate


def test_a_zero_window_turns_dedup_off():
    assert not is_duplicate("firing", {"firing": 99}, 100, 0)
    assert not is_duplicate("resolved", {"resolved": 99}, 100, 0)
