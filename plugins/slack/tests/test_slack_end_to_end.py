"""Slack end to end: a TOML file, the dispatcher and the CLI, against the fake Slack."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from notifier_slack import plugin
from notifier_slack.testing import FakeSlack

from notifier.clock import FakeClock
from notifier.dispatcher import Dispatcher
from notifier.errors import ConfigError
from notifier.models import Alert, Outcome
from notifier.plugins import PluginHost

CONFIG = """
[dispatcher]
workers = 2

[channels.alerts]
kind = "slack"
url = { env = "SLACK_ALERTS_URL" }

[channels.pager]
kind = "slack"
url = { env = "SLACK_PAGER_URL" }
max_attempts = 1

[[routes]]
severity = ["critical"]
channels = ["pager"]
mentions = ["@all", "U024BE7LH"]
continue = true

[[routes]]
channels = ["alerts"]
"""


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def slack(clock):
    with FakeSlack(clock=clock) as server:
        yield server


@pytest.fixture
def env(slack):
    return {
        "SLACK_ALERTS_URL": slack.webhook("#alerts"),
        "SLACK_PAGER_URL": slack.webhook("#pager"),
    }


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "notifier.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def host():
    return PluginHost.from_plugins([plugin])


def tokens(env):
    return [url.rsplit("/", 1)[1] for url in env.values()]


def test_a_critical_alert_reaches_both_webhooks_with_mentions_on_the_pager(
    config, env, host, clock, slack
):
    with Dispatcher.from_config(config, env=env, host=host, clock=clock) as dispatcher:
        receipts = dispatcher.dispatch(Alert(title="API down", severity="critical"))
    assert {r.channel: r.outcome for r in receipts} == {
        "pager": Outcome.DELIVERED,
        "alerts": Outcome.DELIVERED,
    }
    assert all(r.kind == "slack" and r.details["request_id"] for r in receipts)
    [paged] = slack.messages("#pager")
    assert paged.text.startswith("<!channel> <@U024BE7LH>\n*[FIRING][CRITICAL] API down*")
    assert slack.messages("#alerts")[0].blocks[0]["text"]["text"].startswith(":red_circle:")


def test_a_burst_through_one_webhook_is_paced_to_one_message_a_second(tmp_path, host, clock):
    path = tmp_path / "burst.toml"
    with FakeSlack(clock=clock, per_second=1) as slack:  # answers 429 to anything faster
        table = f'[channels.alerts]\nkind = "slack"\nurl = "{slack.webhook()}"\n'
        path.write_text("[dispatcher]\nworkers = 1\n" + table, encoding="utf-8")
        start = clock.monotonic()
        with Dispatcher.from_config(path, host=host, clock=clock) as dispatcher:
            receipts = dispatcher.dispatch_many([Alert(title=f"burst {i}") for i in range(5)])
    assert [(r.outcome, r.attempts) for r in receipts] == [(Outcome.DELIVERED, 1)] * 5
    assert 4.0 <= clock.monotonic() - start < 5.0
    assert len(slack.messages()) == 5


def test_a_long_429_fails_the_delivery_retryably_and_holds_the_webhook_back(
    config, env, host, clock, slack
):
    slack.rate_limit_next(retry_after=45)
    with Dispatcher.from_config(config, env=env, host=host, clock=clock) as dispatcher:
        [first] = dispatcher.dispatch(Alert(title="one"))
        before = clock.monotonic()
        [second] = dispatcher.dispatch(Alert(title="two"))
    assert first.outcome is Outcome.FAILED
    assert (first.details["retryable"], first.details["retry_after"]) == (True, 45.0)
    assert "channel 'alerts', send: rate limited: HTTP 429" in first.error
    assert second.outcome is Outcome.DELIVERED
    assert clock.monotonic() - before >= 44.0  # the pacer waited out Slack's Retry-After


def test_an_archived_channel_is_a_failed_permanent_receipt_without_the_token(
    config, env, host, clock, slack, caplog
):
    caplog.set_level(logging.DEBUG)
    slack.archive("#alerts")
    with Dispatcher.from_config(config, env=env, host=host, clock=clock) as dispatcher:
        [receipt] = dispatcher.dispatch(Alert(title="disk"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.details["code"] == "channel_is_archived"
    assert receipt.details["retryable"] is False
    assert receipt.details["request_id"]  # Slack's X-Slack-Req-Id, for a support ticket
    assert receipt.error.startswith("channel 'alerts', send: Slack refused the message")
    shown = json.dumps(receipt.to_dict()) + caplog.text
    assert all(token not in shown for token in tokens(env))


def test_a_malformed_url_stops_the_dispatcher_with_the_key_path(config, host, clock):
    env = {"SLACK_ALERTS_URL": "not a url", "SLACK_PAGER_URL": "https://hooks.example/x"}
    with pytest.raises(ConfigError) as caught:
        Dispatcher.from_config(config, env=env, host=host, clock=clock)
    assert [issue.path for issue in caught.value.issues] == ["channels.alerts.url"]


def run_cli(*args, env):
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_sends_through_slack_and_reports_receipts_without_secrets(config, env, slack):
    sent = run_cli(
        "send", "-vv", "--config", str(config), "--title", "数据库主从延迟", "--severity",
        "critical", "--body", "lag 120s 🔥", "--json", env=env,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    receipts = {r["channel"]: r for r in json.loads(sent.stdout)}
    assert {name: r["outcome"] for name, r in receipts.items()} == {
        "pager": "delivered",
        "alerts": "delivered",
    }
    assert slack.messages("#alerts")[0].text.startswith("*[FIRING][CRITICAL] 数据库主从延迟*")
    assert all(token not in sent.stdout + sent.stderr for token in tokens(env))

    slack.archive("#alerts")
    failed = run_cli("send", "-c", str(config), "--title", "again", env=env)
    assert failed.returncode == 1
    assert "channel_is_archived" in failed.stdout + failed.stderr
