"""Sliding-window pacing: never more than N in any window of W seconds."""

from __future__ import annotations

import threading

import pytest

from notifier.clock import FakeClock
from notifier.errors import RateLimited
from notifier.kinds import RateLimit
from notifier.ratelimit import SlidingWindow


def _max_in_any_window(times: list[float], per: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + per) for i, start in enumerate(times))


def test_a_burst_is_paced_to_n_per_window_and_nothing_is_dropped() -> None:
    clock = FakeClock()
    window = SlidingWindow(RateLimit(20, 60), clock)
    times = []
    for _ in range(45):
        window.acquire()
        times.append(clock.monotonic())
    assert len(times) == 45 and _max_in_any_window(times, 60) == 20
    # The window carries a one-second margin for network jitter at its edge.
    assert times[20] - times[0] == pytest.approx(61) and times[40] - times[0] == pytest.approx(122)


def test_a_token_bucket_burst_of_2n_in_the_first_window_cannot_happen() -> None:
    clock = FakeClock()
    window = SlidingWindow(RateLimit(5, 10), clock)
    times = []
    for _ in range(5):
        window.acquire()
        times.append(clock.monotonic())
    clock.advance(9.5)  # a bucket would have refilled almost fully by now
    window.acquire()
    assert clock.monotonic() - times[0] == pytest.approx(10.5)


def test_threads_share_one_window() -> None:
    clock = FakeClock()
    window = SlidingWindow(RateLimit(3, 1), clock)
    times: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        window.acquire()
        with lock:
            times.append(clock.monotonic())

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(times) == 12 and _max_in_any_window(times, 1) == 3


def test_max_wait_refuses_without_taking_a_slot() -> None:
    clock = FakeClock()
    window = SlidingWindow(RateLimit(1, 60), clock)
    window.acquire()
    with pytest.raises(RateLimited) as caught:
        window.acquire(max_wait=5)
    assert caught.value.retry_after == pytest.approx(61)
    clock.advance(61)
    assert window.acquire(max_wait=0) == 0


def test_a_provider_refusal_blocks_the_window() -> None:
    clock = FakeClock()
    window = SlidingWindow(RateLimit(100, 1), clock)
    window.block_for(30)
    assert window.delay() == pytest.approx(30)
    assert window.acquire() == pytest.approx(30)
