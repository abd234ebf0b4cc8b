"""Access tokens: single flight, expiry with a margin, one refresh on an invalid answer."""

from __future__ import annotations

import threading

import pytest
from http_fake_provider import GET_CHAT, SEND

from notifier.errors import AuthError, TokenInvalid
from notifier.http import AccessTokenAuth, HttpClient, TokenCache
from notifier.redact import redact


def test_32_threads_with_a_cold_token_cache_cause_exactly_one_token_request(provider, make_client):
    client = make_client(pool_size=32)
    # Hold the token answer so every thread arrives while the first fetch is in flight.
    provider.delay_next(0.3, path="/gettoken")
    start = threading.Barrier(32)
    results, errors = [], []

    def send() -> None:
        start.wait()
        try:
            results.append(client.call(SEND, json={"text": "storm"}))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(results) == 32
    assert len(provider.requests_to("/gettoken")) == 1
    tokens = {r.query["access_token"] for r in provider.requests_to("/message/send")}
    assert len(tokens) == 1


def test_an_expired_token_answer_causes_one_refresh_and_one_retry(provider, make_client):
    client = make_client()
    client.call(SEND, json={"text": "first"})
    provider.expire_tokens()
    result = client.call(SEND, json={"text": "second"})
    assert result.attempts == 2
    assert len(provider.requests_to("/gettoken")) == 2
    assert len(provider.requests_to("/message/send")) == 3


def test_a_second_consecutive_invalid_token_answer_is_an_error_not_a_loop(provider, make_client):
    client = make_client()
    provider.reject_all_tokens = True
    with pytest.raises(TokenInvalid) as caught:
        client.call(GET_CHAT, params={"chatid": "c"})
    assert caught.value.attempts == 2
    assert caught.value.code == 40014
    assert len(provider.requests_to("/gettoken")) == 2
    assert len(provider.requests_to("/appchat/get")) == 2


def test_the_token_refresh_does_not_use_up_a_retry(provider, make_client, clock):
    client = make_client()
    client.call(SEND, json={})
    provider.expire_tokens()
    provider.fail_next(2, status=503, path="/appchat/get")
    result = client.call(GET_CHAT, params={"chatid": "c"})
    assert result.attempts == 4  # 503, 503, invalid token, ok
    assert clock.sleeps == [0.5, 1.0]


def test_a_cached_token_is_reused_until_expires_in_minus_the_margin(provider, make_client, clock):
    client = make_client()
    client.call(SEND, json={})
    clock.advance(7200 - 60 - 1)
    client.call(SEND, json={})
    assert len(provider.requests_to("/gettoken")) == 1
    clock.advance(1)
    client.call(SEND, json={})
    assert len(provider.requests_to("/gettoken")) == 2


def test_invalidating_a_token_that_was_already_replaced_keeps_the_new_one(clock):
    issued = iter(["token-one-abc", "token-two-abc"])
    tokens = TokenCache(lambda: (next(issued), 7200), clock=clock)
    first = tokens.get()
    assert tokens.invalidate(first) is True
    second = tokens.get()
    assert tokens.invalidate(first) is False
    assert tokens.get() == second == "token-two-abc"
    assert tokens.fetches == 2


def test_a_failed_fetch_is_shared_by_waiters_and_the_next_call_fetches_again(clock):
    gate = threading.Event()
    calls = []

    def fetch():
        calls.append(1)
        if len(calls) == 1:
            gate.wait(5)
            raise RuntimeError("token endpoint down for token-xyz-123")
        return "fresh-token-456", 7200

    tokens = TokenCache(fetch, clock=clock)
    errors = []

    def get() -> None:
        try:
            tokens.get()
        except AuthError as exc:
            errors.append(exc)

    leader = threading.Thread(target=get)
    leader.start()
    while not calls:  # the leader is inside fetch
        threading.Event().wait(0.001)
    followers = [threading.Thread(target=get) for _ in range(5)]
    for t in followers:
        t.start()
    gate.set()
    for t in [leader, *followers]:
        t.join(5)
    # Followers that arrived during the failed flight share its error; any that arrived
    # after it ended started a new fetch, which succeeded.
    assert len(errors) >= 1
    assert all("could not obtain an access token" in str(e) for e in errors)
    assert tokens.get() == "fresh-token-456"
    assert len(calls) == 2


def test_fetched_tokens_are_registered_for_redaction(clock):
    tokens = TokenCache(lambda: ("registered-token-q7", 7200), clock=clock)
    tokens.get()
    assert redact("Bearer registered-token-q7 in text") == "Bearer *** in text"


def test_a_wrong_secret_is_an_auth_error_that_is_not_retried(provider, clock):
    from http_fake_provider import GETTOKEN

    from notifier.http import endpoint_token_fetcher
    from notifier.redact import Secret

    plain = HttpClient(provider.url, clock=clock)
    fetch = endpoint_token_fetcher(plain, GETTOKEN, {"corpsecret": Secret("wrong-secret-77")})
    client = HttpClient(provider.url, auth=AccessTokenAuth(TokenCache(fetch, clock=clock)))
    with pytest.raises(AuthError) as caught:
        client.call(SEND, json={})
    assert caught.value.retryable is False
    assert caught.value.attempts == 0  # the send itself never went out
    assert len(provider.requests_to("/gettoken")) == 1
    assert provider.requests_to("/message/send") == []
