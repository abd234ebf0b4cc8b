"""The ``slack`` channel delivers through a fake Slack and maps every answer it can get."""

from __future__ import annotations

import logging

import pytest
from notifier_slack import plugin
from notifier_slack.plugin import SlackChannel
from notifier_slack.testing import FakeSlack

from notifier.clock import FakeClock
from notifier.config import parse_channel
from notifier.errors import ConfigError, ProviderError, RateLimited
from notifier.kinds import BuildContext, RateLimit
from notifier.models import Alert, DeliveryContext
from notifier.plugins import PluginHost


@pytest.fixture(scope="module")
def host():
    return PluginHost.from_plugins([plugin])


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def slack(clock):
    with FakeSlack(clock=clock) as server:
        yield server


@pytest.fixture
def events():
    return []


def build(host, clock, url, observe=None, **options) -> SlackChannel:
    spec = parse_channel("ops", {"kind": "slack", "url": url, **options}, host)
    return host.build_channel(spec, BuildContext(clock=clock, pool_size=2, observe=observe))


@pytest.fixture
def url(slack):
    return slack.webhook("#alerts")


@pytest.fixture
def channel(host, clock, url, events):
    ch = build(host, clock, url, observe=events.append)
    yield ch
    ch.close()


ALERT = Alert(title="Disk full", body="/var at 99%", severity="error", labels={"host": "db-1"})


def send(host, channel, alert=ALERT, **delivery):
    return host.send(channel, alert, DeliveryContext(**delivery))


def test_the_kind_declares_slacks_one_message_a_second_and_a_secret_url(host):
    kind = host.kinds["slack"]
    assert kind.rate_limit == RateLimit(1, 1.0)
    assert kind.option("url").secret and kind.option("url").required
    assert not kind.deduplicates


def test_an_alert_is_delivered_as_text_and_blocks(host, channel, slack):
    result = send(host, channel, mentions=("U42",))
    [message] = slack.messages("#alerts")
    assert message.text.startswith("<@U42>\n*[FIRING][ERROR] Disk full*")
    assert message.blocks[0]["text"]["text"] == ":red_circle: [FIRING][ERROR] Disk full"
    assert not message.truncated
    assert result.attempts == 1
    assert result.details["request_id"]


def test_a_429_is_waited_out_for_retry_after_on_the_clock_and_retried(host, channel, slack, clock):
    slack.rate_limit_next(retry_after=3)
    result = send(host, channel)
    assert result.attempts == 2
    assert clock.sleeps == [3.0]
    assert len(slack.messages()) == 1


def test_a_long_retry_after_is_raised_for_the_dispatcher_to_pace(host, channel, slack, clock):
    slack.rate_limit_next(retry_after=120)
    with pytest.raises(RateLimited) as caught:
        send(host, channel)
    assert caught.value.retry_after == 120.0
    assert caught.value.retryable
    assert clock.sleeps == []
    assert slack.messages() == []


ERRORS = {
    "archive": ("channel_is_archived", "unarchive it"),
    "delete": ("channel_not_found", "create a new webhook"),
    "restrict": ("action_prohibited", "workspace admin"),
}


@pytest.mark.parametrize("action", sorted(ERRORS))
def test_a_channel_state_error_is_permanent_and_says_what_to_do(host, channel, slack, action):
    getattr(slack, action)("#alerts")
    name, hint = ERRORS[action]
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    error = caught.value
    assert not error.retryable
    assert error.code == name
    assert error.attempts == 1
    assert str(error).startswith(f"channel 'ops', send: Slack refused the message: {name}")
    assert hint in str(error)


@pytest.mark.parametrize("name", ["invalid_payload", "no_text", "invalid_token", "no_service"])
def test_every_plain_text_error_name_becomes_a_permanent_provider_error(host, channel, slack, name):
    slack.reject_next(name)
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    assert caught.value.code == name
    assert caught.value.provider_message == name
    assert not caught.value.retryable


def test_a_revoked_webhook_answers_no_service(host, channel, slack, url):
    slack.revoke(url)
    with pytest.raises(ProviderError, match="no_service"):
        send(host, channel)


def test_a_server_error_is_retryable_but_not_resent_within_the_call(host, channel, slack):
    slack.fail_next(status=503)
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    assert caught.value.retryable
    assert caught.value.attempts == 1  # a POST Slack may have acted on is not repeated here
    assert len(slack.requests) == 1


def test_a_slack_compatible_server_answering_other_text_counts_as_delivered(host, clock, slack):
    slack.route("POST", "/hooks/abc", lambda request: {"success": True})
    channel = build(host, clock, slack.url + "/hooks/abc")
    try:
        assert send(host, channel).attempts == 1
    finally:
        channel.close()


def test_a_proxy_error_page_without_an_error_name_is_judged_by_status(host, clock, slack):
    slack.fail_next(status=404, body=b"<html>Not Found</html>")
    channel = build(host, clock, slack.webhook())
    try:
        with pytest.raises(ProviderError) as caught:
            send(host, channel)
    finally:
        channel.close()
    assert caught.value.code == 404
    assert not caught.value.retryable


def test_the_webhook_token_never_reaches_logs_events_errors_or_reprs(
    host, channel, slack, url, events, caplog
):
    token = url.rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    send(host, channel)
    slack.archive("#alerts")
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    seen = [caplog.text, repr(channel), repr(channel.client), str(caught.value)]
    seen += [repr(event) for event in events]
    assert len(events) == 2
    assert all(token not in text for text in seen)


@pytest.mark.parametrize(
    "url",
    ["hooks.example/services/T/B/x", "https://hooks.example", "https://h/x?y=1", "ftp://h/x"],
)
def test_a_url_that_is_not_a_webhook_url_is_a_config_error_naming_the_option(host, clock, url):
    with pytest.raises(ConfigError) as caught:
        build(host, clock, url)
    assert caught.value.issues[0].path == "channels.ops.url"
    assert "incoming webhook URL" in str(caught.value)
    assert url not in str(caught.value)


def test_a_missing_url_is_reported_by_the_schema(host):
    with pytest.raises(ConfigError, match=r"channels\.ops\.url: required"):
        parse_channel("ops", {"kind": "slack"}, host)
