"""The client honours the running delivery's deadline (``notifier.deadline``)."""

from __future__ import annotations

import threading
import time

import pytest
from http_fake_provider import GET_CHAT, SEND

from notifier import deadline
from notifier.errors import DeliveryTimeout, RateLimited, TransportError
from notifier.http import RetryPolicy, TokenCache


def test_the_deadline_caps_the_read_timeout(provider, make_client):
    client = make_client(timeout=(1.0, 30.0), retry=RetryPolicy(max_attempts=1))
    client.call(GET_CHAT, params={"chatid": "warm"})
    provider.delay_next(30, path="/message/send")
    started = time.monotonic()
    with deadline.within(0.3), pytest.raises(TransportError) as caught:
        client.call(SEND, json={"text": "slow"})
    # The configured 30 s read timeout would have held the call far longer.
    assert time.monotonic() - started < 10
    assert "timed out after 0.3 s waiting for the answer from 127.0.0.1:" in str(caught.value)
    assert caught.value.retryable is True


def test_no_retry_is_started_that_would_end_past_the_deadline(provider, make_client, clock):
    client = make_client(retry=RetryPolicy(max_attempts=3, max_wait=30))
    client.call(SEND, json={})
    provider.fail_next(1, status=429, retry_after=7, path="/message/send")
    with deadline.within(5), pytest.raises(RateLimited) as caught:
        client.call(SEND, json={"text": "x"})
    assert caught.value.attempts == 1
    assert clock.sleeps == []  # the 7 s wait did not fit in 5 s: left to the outbox
    assert len(provider.requests_to("/message/send")) == 2  # the token warm-up and one try


def test_a_retry_that_fits_in_the_deadline_still_happens(provider, make_client, clock):
    client = make_client(retry=RetryPolicy(max_attempts=3, max_wait=30))
    client.call(SEND, json={})
    provider.fail_next(1, status=429, retry_after=7, path="/message/send")
    with deadline.within(60):
        assert client.call(SEND, json={"text": "x"}).attempts == 2
    assert clock.sleeps == [7.0]


def test_a_thread_waiting_for_another_ones_token_fetch_stops_at_its_deadline():
    release, fetching = threading.Event(), threading.Event()

    def slow_fetch() -> tuple[str, float]:
        fetching.set()
        release.wait(30)
        return "tok", 7200.0

    tokens = TokenCache(slow_fetch, identity="corp")
    leader = threading.Thread(target=tokens.get)
    leader.start()
    try:
        assert fetching.wait(5)
        with deadline.within(0.05), pytest.raises(DeliveryTimeout) as caught:
            tokens.get()
        assert caught.value.retryable is True
        assert caught.value.attempts == 0
    finally:
        release.set()
        leader.join()
    assert tokens.get() == "tok" and tokens.fetches == 1


def test_deadlines_nest_to_the_sooner_one_and_unwind():
    assert deadline.current() is None and deadline.remaining() is None
    assert deadline.cap((3.0, 10.0)) == (3.0, 10.0)
    with deadline.within(2.0) as outer:
        with deadline.within(60.0) as inner:
            assert inner == outer  # an inner, longer budget cannot extend the outer one
        with deadline.within(0.5) as sooner:
            assert sooner < outer
            connect, read = deadline.cap((3.0, 10.0))  # type: ignore[misc]
            assert 0 < connect <= 0.5 and 0 < read <= 0.5
        assert deadline.current() == outer
    assert deadline.current() is None


def test_a_passed_deadline_still_gives_a_positive_timeout_and_refuses_waits():
    with deadline.within(-1.0):
        assert deadline.cap(10.0) == 0.001
        deadline.check_wait(0.0, "ops")
        with pytest.raises(RateLimited) as caught:
            deadline.check_wait(2.5, "channel 'ops' rate limit")
    assert caught.value.retry_after == 2.5
    assert "after the delivery_timeout" in str(caught.value)
