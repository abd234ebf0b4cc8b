"""Shared HTTP options and building a client from a channel's configuration."""

from __future__ import annotations

import pytest

from notifier.clock import FakeClock
from notifier.http import HTTP_OPTIONS, client_from_options
from notifier.kinds import BuildContext, ChannelSpec


def test_http_options_declare_timeouts_tls_and_attempts_with_defaults():
    options = {opt.name: opt for opt in HTTP_OPTIONS}
    assert set(options) == {
        "connect_timeout",
        "read_timeout",
        "verify_tls",
        "max_attempts",
        "max_response_bytes",
    }
    assert options["verify_tls"].default is True
    assert options["max_attempts"].check(0) is not None
    assert options["read_timeout"].check(2.5) is None


def test_a_client_built_from_options_follows_the_config_and_the_build_context():
    seen = []
    clock = FakeClock()
    spec = ChannelSpec(
        "ops-wecom", "wecom", {"read_timeout": 4.0, "max_attempts": 5, "connect_timeout": 1}
    )
    context = BuildContext(clock=clock, pool_size=16, observe=seen.append)
    client = client_from_options(spec, context, "https://qyapi.example.com/cgi-bin")
    assert client.timeout == (1.0, 4.0)
    assert client.retry.max_attempts == 5
    assert client.channel == "ops-wecom"
    assert client.clock is clock
    assert client.observe == seen.append
    assert client.session.get_adapter("https://qyapi.example.com")._pool_maxsize == 16
    assert client.api_root == "https://qyapi.example.com/cgi-bin/"


def test_missing_options_take_the_defaults():
    client = client_from_options(ChannelSpec("c", "k", {}), BuildContext(), "https://x.example")
    assert client.timeout == (3.05, 10.0)
    assert client.retry.max_attempts == 3
    assert client.verify is not False


def test_a_webhook_client_is_rooted_without_the_token_which_stays_secret():
    from notifier.errors import ConfigError, ConfigIssue
    from notifier.http.options import webhook_client
    from notifier.redact import Secret

    spec = ChannelSpec("hook", "x", {"url": Secret("https://hooks.example.com/services/T1/tok")})
    client, token = webhook_client(spec, BuildContext(), lambda spec: [])
    assert client.api_root == "https://hooks.example.com/services/T1/"
    assert isinstance(token, Secret) and token.reveal() == "tok"

    issue = ConfigIssue("<inline>", "channels.hook.url", "a webhook URL")
    bad = ChannelSpec("hook", "x", {"url": Secret("not a url")})
    with pytest.raises(ConfigError) as raised:
        webhook_client(bad, BuildContext(), lambda spec: [issue])
    assert raised.value.issues == (issue,)
