"""``Retry-After`` is read by one function, against one clock: the client's."""

from __future__ import annotations

import pytest
import requests
from http_fake_provider import CODES, GET_CHAT
from test_http_envelopes import answer

from notifier.clock import FakeClock
from notifier.errors import ProviderError, RateLimited
from notifier.http import (
    Endpoint,
    answers_read_with,
    check_status,
    errcode_envelope,
    json_or_status,
    retry_after_of,
)
from notifier.testing import http_date


def test_an_http_date_is_read_against_the_clock_the_answer_is_read_with():
    clock = FakeClock(start=1_000_000_000.0)
    response = answer(429, "", {"Retry-After": http_date(clock.time() + 90)})
    with answers_read_with(clock):
        assert retry_after_of(response) == 90
        with pytest.raises(RateLimited) as caught:
            json_or_status(response)
    assert caught.value.retry_after == 90
    assert retry_after_of(response, FakeClock(start=1_000_000_060.0)) == 30


def test_a_date_long_past_by_the_system_clock_means_now_outside_a_client():
    response = answer(503, "", {"Retry-After": http_date(1_000_000_000.0)})
    with pytest.raises(ProviderError) as caught:
        check_status(response)
    assert caught.value.retry_after == 0


def test_a_429_with_a_date_past_max_wait_is_raised_with_the_wait_by_the_clients_clock(
    provider, make_client, clock
):
    client = make_client()
    client.call(GET_CHAT, params={"chatid": "c"})  # token
    provider.fail_next(
        1, status=429, retry_after=http_date(clock.time() + 600), path="/message/send"
    )
    send = Endpoint("send", "POST", "message/send", parse=errcode_envelope(CODES))
    with pytest.raises(RateLimited) as caught:
        client.call(send, json={"text": "x"})
    assert 599 <= caught.value.retry_after <= 600  # an HTTP date has whole seconds
    assert clock.sleeps == []  # past max_wait: raised for the outbox, not slept


def test_a_plugins_own_parser_that_leaves_retry_after_unread_still_gets_the_wait(
    provider, make_client, clock
):
    def own_parser(response: requests.Response) -> object:
        if response.status_code >= 500:
            raise ProviderError("busy", code=response.status_code, retryable=True)
        return response.json()

    client = make_client()
    own = Endpoint("get_chat", "GET", "appchat/get", parse=own_parser)
    client.call(GET_CHAT, params={"chatid": "c"})  # token
    provider.fail_next(1, status=503, retry_after=http_date(clock.time() + 12), path="/appchat/get")
    client.call(own, params={"chatid": "c"})
    assert len(clock.sleeps) == 1 and 11 <= clock.sleeps[0] <= 12
