"""The client against a real server: pooling, timeouts, retries, proxies, TLS settings."""

from __future__ import annotations

import threading
import warnings

import pytest
import requests
from http_fake_provider import GET_CHAT, SEND

from notifier.errors import ProviderError, RateLimited, TransportError
from notifier.http import (
    Endpoint,
    HttpClient,
    InsecureTransportWarning,
    RetryPolicy,
    json_or_status,
)
from notifier.testing import LocalServer, Response, http_date


def test_many_calls_reuse_one_keep_alive_connection(provider, make_client):
    client = make_client()
    for _ in range(50):
        client.call(SEND, json={"text": "hello"})
    sends = provider.requests_to("/message/send")
    assert len(sends) == 50
    assert {r.connection for r in sends} == {sends[0].connection}
    assert provider.connections == 2  # one for the token client, one for the sends


def test_concurrent_calls_open_no_more_connections_than_the_pool_size(provider, make_client):
    client = make_client(pool_size=4)
    client.call(GET_CHAT, params={"chatid": "warm"})  # fetch the token first

    def work() -> None:
        for _ in range(10):
            client.call(SEND, json={"text": "hi"})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sends = provider.requests_to("/message/send")
    assert len(sends) == 40
    assert len({r.connection for r in sends}) <= 4


def test_a_server_slower_than_the_read_timeout_is_a_transport_error_that_may_have_been_sent(
    provider, make_client
):
    client = make_client(timeout=(1.0, 0.2), retry=RetryPolicy(max_attempts=1))
    client.call(GET_CHAT, params={"chatid": "warm"})
    provider.delay_next(5, path="/message/send")
    with pytest.raises(TransportError) as caught:
        client.call(SEND, json={"text": "slow"})
    assert caught.value.sent is True
    assert caught.value.retryable is True
    assert caught.value.attempts == 1
    assert "read timed out" in str(caught.value)


def test_an_idempotent_read_is_retried_after_5xx_with_exponential_backoff(
    provider, make_client, clock
):
    client = make_client()
    client.call(SEND, json={})  # token
    provider.fail_next(2, status=503, path="/appchat/get")
    result = client.call(GET_CHAT, params={"chatid": "c1"})
    assert result.attempts == 3
    assert result.data["chat_info"]["chatid"] == "c1"
    assert clock.sleeps == [0.5, 1.0]
    assert len(provider.requests_to("/appchat/get")) == 3


def test_an_idempotent_call_is_retried_after_the_connection_drops(provider, make_client):
    client = make_client()
    provider.drop_next(1, path="/appchat/get")
    result = client.call(GET_CHAT, params={"chatid": "c1"})
    assert result.attempts == 2
    assert len(provider.requests_to("/appchat/get")) == 2


def test_retry_after_seconds_are_honoured_instead_of_backoff(provider, make_client, clock):
    client = make_client()
    client.call(SEND, json={})
    provider.fail_next(1, status=429, retry_after=7, path="/message/send")
    result = client.call(SEND, json={"text": "x"})
    assert result.attempts == 2
    assert clock.sleeps == [7.0]


def test_retry_after_as_an_http_date_is_read_against_the_injected_clock(
    provider, make_client, clock
):
    client = make_client()
    provider.fail_next(1, status=503, retry_after=http_date(clock.time() + 12), path="/appchat/get")
    client.call(GET_CHAT, params={"chatid": "c"})
    assert len(clock.sleeps) == 1
    assert 11 <= clock.sleeps[0] <= 12


def test_a_retry_after_longer_than_max_wait_is_raised_for_the_outbox_not_slept(
    provider, make_client, clock
):
    client = make_client(retry=RetryPolicy(max_attempts=3, max_wait=30))
    client.call(SEND, json={})
    provider.fail_next(1, status=429, retry_after=600, path="/message/send")
    with pytest.raises(RateLimited) as caught:
        client.call(SEND, json={"text": "x"})
    assert caught.value.retry_after == 600
    assert caught.value.attempts == 1
    assert clock.sleeps == []


def test_a_provider_rate_limit_code_is_retried_even_for_a_send(provider, make_client, clock):
    client = make_client()
    client.call(SEND, json={})
    provider.answers.append({"errcode": 45009, "errmsg": "api freq out of limit"})
    result = client.call(SEND, json={"text": "x"})
    assert result.attempts == 2


def test_a_send_is_not_retried_after_the_server_answered_5xx(provider, make_client, clock):
    client = make_client()
    client.call(GET_CHAT, params={"chatid": "warm"})
    provider.fail_next(1, status=502, path="/message/send")
    with pytest.raises(ProviderError) as caught:
        client.call(SEND, json={"text": "once"})
    assert len(provider.requests_to("/message/send")) == 1
    assert caught.value.attempts == 1
    assert caught.value.retryable is True  # the outbox may still try later
    assert clock.sleeps == []


def test_a_send_is_not_retried_after_the_connection_dropped_once_received(provider, make_client):
    client = make_client()
    client.call(GET_CHAT, params={"chatid": "warm"})
    provider.drop_next(1, path="/message/send")
    with pytest.raises(TransportError) as caught:
        client.call(SEND, json={"text": "once"})
    assert caught.value.sent is True
    assert len(provider.requests_to("/message/send")) == 1


def test_a_send_the_provider_busy_code_answers_is_not_retried(provider, make_client):
    client = make_client()
    client.call(SEND, json={})
    provider.answers.append({"errcode": -1, "errmsg": "system busy"})
    with pytest.raises(ProviderError) as caught:
        client.call(SEND, json={"text": "x"})
    assert caught.value.code == -1
    assert caught.value.retryable is True
    assert len(provider.requests_to("/message/send")) == 2  # the warm-up and this one


def test_a_send_with_an_idempotency_key_is_retried_and_carries_the_key(provider, make_client):
    client = make_client()
    client.call(SEND, json={})
    keyed = Endpoint(
        "send", "POST", "message/send", parse=SEND.parse, idempotency_header="Idempotency-Key"
    )
    provider.fail_next(1, status=503, path="/message/send")
    result = client.call(keyed, json={"text": "x"}, idempotency_key="alert-42")
    assert result.attempts == 2
    sent = provider.requests_to("/message/send")[-2:]
    assert [r.header("Idempotency-Key") for r in sent] == ["alert-42", "alert-42"]


def test_a_send_is_retried_when_the_connection_was_refused(clock):
    with LocalServer() as gone:
        root = gone.url
    client = HttpClient(root, clock=clock, retry=RetryPolicy(max_attempts=3, jitter=False))
    with pytest.raises(TransportError) as caught:
        client.call(Endpoint("send", "POST", "send"), json={})
    assert caught.value.sent is False
    assert caught.value.attempts == 3
    assert len(clock.sleeps) == 2
    assert "connection refused by 127.0.0.1:" in str(caught.value)


def test_errors_name_the_channel_the_endpoint_and_the_provider_code(provider, make_client):
    client = make_client()
    client.call(SEND, json={})
    provider.answers.append({"errcode": 86001, "errmsg": "chatid not found"})
    with pytest.raises(ProviderError) as caught:
        client.call(SEND, json={"text": "x"})
    assert str(caught.value) == "channel 'ops', send: errcode 86001: chatid not found"
    assert caught.value.retryable is False


def test_json_bodies_are_utf8_without_ascii_escapes(provider, make_client):
    client = make_client()
    client.call(SEND, json={"text": "告警 🚨"})
    request = provider.requests_to("/message/send")[-1]
    assert request.header("Content-Type") == "application/json"
    assert "告警 🚨".encode() in request.body
    assert request.json() == {"text": "告警 🚨"}


def test_every_attempt_is_reported_as_an_event(provider, make_client, events):
    client = make_client()
    provider.fail_next(1, status=500, path="/appchat/get")
    client.call(GET_CHAT, params={"chatid": "c"})
    chat_events = [e for e in events if e.endpoint == "get_chat"]
    assert [(e.attempt, e.status, e.outcome) for e in chat_events] == [
        (1, 500, "retry"),
        (2, 200, "ok"),
    ]
    assert all(e.channel == "ops" and e.method == "GET" for e in chat_events)
    assert all(e.duration_ms >= 0 for e in chat_events)


def test_a_failing_observer_does_not_fail_the_call(provider, make_client):
    def broken(event):
        raise RuntimeError("observer bug")

    client = make_client(observe=broken)
    assert client.call(SEND, json={}).attempts == 1


def test_proxy_settings_are_read_from_the_environment_once_when_the_client_is_built(
    monkeypatch,
):
    calls = []
    real = requests.utils.get_environ_proxies

    def counting(url, no_proxy=None):
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with LocalServer() as server:
        server.route("GET", "/ping", lambda request: {"ok": True})
        with HttpClient(server.url) as client:
            for _ in range(5):
                assert client.call(Endpoint("ping", "GET", "ping")).data == {"ok": True}
    assert len(calls) == 1


def test_an_environment_proxy_is_kept_for_the_api_root(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = HttpClient("https://api.example.com/cgi-bin")
    assert client.proxies.get("https") == "http://proxy.example:3128"
    assert client.session.trust_env is False


def test_turning_tls_verification_off_warns_with_the_channel_name():
    with pytest.warns(InsecureTransportWarning, match="channel 'staging-wecom'"):
        client = HttpClient("https://api.example.com", channel="staging-wecom", verify_tls=False)
    assert client.verify is False


def test_tls_verification_is_on_by_default_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = HttpClient("https://api.example.com")
    assert client.verify is not False


def test_redirects_are_not_followed(clock):
    with LocalServer() as server:
        server.route(
            "GET", "/old", lambda request: Response(302, b"", {"Location": "http://evil.invalid/"})
        )
        client = HttpClient(server.url, clock=clock)
        with pytest.raises(ProviderError) as caught:
            client.call(Endpoint("old", "GET", "old", parse=json_or_status))
    assert caught.value.code == 302


def test_an_idempotent_call_that_keeps_failing_stops_after_max_attempts(
    provider, make_client, clock
):
    client = make_client()
    client.call(SEND, json={})
    provider.fail_next(5, status=500, path="/appchat/get")
    with pytest.raises(ProviderError) as caught:
        client.call(GET_CHAT, params={"chatid": "c"})
    assert caught.value.attempts == 3
    assert len(provider.requests_to("/appchat/get")) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_path_placeholders_are_filled_and_quoted(clock):
    with LocalServer() as server:
        server.handle = lambda request: {"path": request.path}
        client = HttpClient(server.url + "/api/v1", clock=clock)
        item = Endpoint("item", "GET", "items/{item_id}")
        result = client.call(item, path_params={"item_id": "a b/c"})
    assert result.data == {"path": "/api/v1/items/a%20b%2Fc"}
