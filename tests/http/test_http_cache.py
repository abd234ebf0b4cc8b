"""Cached reads: expiry on the fake clock, keys, and sends never cached."""

from __future__ import annotations

import pytest
from http_fake_provider import GET_CHAT, SEND

from notifier.http import Endpoint, ExpiringCache


def test_a_cached_read_is_served_from_the_cache_until_the_clock_passes_its_ttl(
    provider, make_client, clock
):
    client = make_client()
    first = client.call(GET_CHAT, params={"chatid": "c1"})
    again = client.call(GET_CHAT, params={"chatid": "c1"})
    assert again.from_cache is True
    assert again.attempts == 0
    assert again.data == first.data
    assert len(provider.requests_to("/appchat/get")) == 1
    clock.advance(29.9)
    client.call(GET_CHAT, params={"chatid": "c1"})
    assert len(provider.requests_to("/appchat/get")) == 1
    clock.advance(0.2)
    fresh = client.call(GET_CHAT, params={"chatid": "c1"})
    assert fresh.from_cache is False
    assert len(provider.requests_to("/appchat/get")) == 2


def test_different_parameters_are_cached_separately(provider, make_client):
    client = make_client()
    client.call(GET_CHAT, params={"chatid": "a"})
    client.call(GET_CHAT, params={"chatid": "b"})
    client.call(GET_CHAT, params={"chatid": "a"})
    assert [r.query["chatid"] for r in provider.requests_to("/appchat/get")] == ["a", "b"]


def test_failed_reads_are_not_cached(provider, make_client):
    client = make_client()
    client.call(SEND, json={})
    provider.fail_next(3, status=500, path="/appchat/get")
    with pytest.raises(Exception):  # noqa: B017 - any failure will do
        client.call(GET_CHAT, params={"chatid": "a"})
    assert client.call(GET_CHAT, params={"chatid": "a"}).from_cache is False


def test_sends_are_never_cached(provider, make_client):
    client = make_client()
    client.call(SEND, json={"text": "x"})
    client.call(SEND, json={"text": "x"})
    assert len(provider.requests_to("/message/send")) == 2


def test_only_get_endpoints_may_declare_a_cache_ttl():
    with pytest.raises(ValueError, match="only GET"):
        Endpoint("send", "POST", "send", cache_ttl=10)


def test_the_expiring_cache_gives_each_item_its_own_ttl(clock):
    cache = ExpiringCache(clock=clock)
    cache.put("short", 1, ttl=5)
    cache.put("long", 2, ttl=50)
    clock.advance(10)
    assert cache.get("short", None) is None
    assert cache.get("long") == 2
    cache.clear()
    assert len(cache) == 0
