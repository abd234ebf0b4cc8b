"""Fixtures for the HTTP layer tests: the fake provider, a fake clock, a client factory."""

from __future__ import annotations

import pytest
from http_fake_provider import CORP_SECRET, GETTOKEN, FakeProvider

from notifier.clock import FakeClock
from notifier.http import (
    AccessTokenAuth,
    HttpClient,
    RetryPolicy,
    TokenCache,
    credential_id,
    endpoint_token_fetcher,
)
from notifier.redact import Secret


@pytest.fixture
def provider():
    with FakeProvider() as server:
        yield server


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def events():
    return []


@pytest.fixture
def make_client(provider, clock, events):
    """``make_client(**overrides)``: an access-token client on the fake provider."""
    clients: list[HttpClient] = []

    def make(**overrides) -> HttpClient:
        kwargs = dict(
            channel="ops",
            clock=clock,
            observe=events.append,
            retry=RetryPolicy(max_attempts=3, backoff=0.5, jitter=False),
            timeout=(1.0, 2.0),
        )
        kwargs.update(overrides)
        plain = HttpClient(provider.url, **{k: v for k, v in kwargs.items() if k != "auth"})
        if "auth" not in overrides:
            secret = Secret(CORP_SECRET)
            fetch = endpoint_token_fetcher(
                plain, GETTOKEN, {"corpid": "corp1", "corpsecret": secret}
            )
            tokens = TokenCache(fetch, identity=credential_id("corp1", secret), clock=clock)
            kwargs["auth"] = AccessTokenAuth(tokens)
        client = HttpClient(provider.url, **kwargs)
        clients.extend([plain, client])
        return client

    yield make
    for client in clients:
        client.close()
