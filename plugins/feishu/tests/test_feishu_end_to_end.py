"""Feishu end to end: a TOML file, the dispatcher and the CLI, against the fake Feishu
(which verifies every signature)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import attrs
import pytest
from notifier_feishu import plugin
from notifier_feishu.messages import BODY_LIMIT
from notifier_feishu.plugin import FREQUENCY_LIMITED
from notifier_feishu.testing import FakeFeishu

from notifier.clock import FakeClock
from notifier.dispatcher import Dispatcher
from notifier.models import Alert, Outcome
from notifier.plugins import PluginHost
from notifier.testing.samples import huge_alert

OPS_TOKEN, OPS_SECRET = "a1b2c3d4-ops-hook-0001", "opsFeishuSigningSecret"
ONCALL_TOKEN = "e5f6a7b8-oncall-hook-0002"

CONFIG = """
[dispatcher]
workers = 2

[channels.ops]
kind = "feishu-bot"
url = { env = "FEISHU_OPS_URL" }
secret = { env = "FEISHU_OPS_SECRET" }

[channels.oncall]
kind = "feishu-bot"
url = { env = "FEISHU_ONCALL_URL" }
msgtype = "text"
max_attempts = 1

[[routes]]
severity = ["critical"]
channels = ["oncall"]
mentions = ["@all"]
continue = true

[[routes]]
channels = ["ops"]
"""


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def feishu(clock):
    with FakeFeishu({OPS_TOKEN: OPS_SECRET, ONCALL_TOKEN: None}, clock=clock) as server:
        yield server


def environment(server):
    return {
        "FEISHU_OPS_URL": server.webhook_url(OPS_TOKEN),
        "FEISHU_OPS_SECRET": OPS_SECRET,
        "FEISHU_ONCALL_URL": server.webhook_url(ONCALL_TOKEN),
    }


@pytest.fixture
def env(feishu):
    return environment(feishu)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "notifier.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def host():
    return PluginHost.from_plugins([plugin])


def dispatcher(config, env, host, clock):
    return Dispatcher.from_config(config, env=env, host=host, clock=clock)


def test_a_critical_alert_reaches_both_bots_as_a_signed_card_and_a_mentioning_text(
    config, env, host, clock, feishu
):
    with dispatcher(config, env, host, clock) as d:
        receipts = d.dispatch(Alert(title="支付网关超时", severity="critical"))
    assert {r.channel: r.outcome for r in receipts} == {
        "oncall": Outcome.DELIVERED,
        "ops": Outcome.DELIVERED,
    }
    by_token = {m.token: m for m in feishu.messages}
    card = by_token[OPS_TOKEN].body["card"]  # its signature was verified
    assert card["header"]["template"] == "red"
    assert by_token[ONCALL_TOKEN].text.endswith('<at user_id="all"></at>')


def test_a_burst_is_paced_within_five_a_second_and_a_hundred_a_minute(
    tmp_path, env, host, clock, feishu
):
    # One worker: with two, one worker's pacing sleep moves the shared fake clock while
    # the other's request is in flight, which no real clock does.
    config = tmp_path / "burst.toml"
    config.write_text(CONFIG.replace("workers = 2", "workers = 1"), encoding="utf-8")
    start = clock.monotonic()
    with dispatcher(config, env, host, clock) as d:
        receipts = d.dispatch_many([Alert(title=f"burst {i}") for i in range(105)])
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 105
    assert FREQUENCY_LIMITED not in feishu.answers
    # 5 at once, then 5 per 3 s window (plus the pacer's safety margin).
    assert 60.0 <= clock.monotonic() - start <= 64.0


def test_split_alerts_are_paced_part_by_part(tmp_path, env, host, clock, feishu):
    config = tmp_path / "split.toml"
    split = 'workers = 1\n\n[channels.ops]\noverflow = "split"\nmax_parts = 3'
    config.write_text(CONFIG.replace("workers = 2\n\n[channels.ops]", split), encoding="utf-8")
    start = clock.monotonic()
    with dispatcher(config, env, host, clock) as d:
        huge = huge_alert(3 * BODY_LIMIT)
        alerts = [attrs.evolve(huge, title=f"split {i}", severity="warning") for i in range(4)]
        receipts = d.dispatch_many(alerts)
    split = [(r.outcome, r.details.get("parts")) for r in receipts if r.channel == "ops"]
    assert split == [(Outcome.DELIVERED, 3)] * 4
    assert len(feishu.messages) == 12 and FREQUENCY_LIMITED not in feishu.answers
    assert clock.monotonic() - start >= 6.0  # 12 messages, 5 per 3 s window


def test_an_outbox_retry_of_a_split_alert_sends_only_the_parts_still_missing(
    tmp_path, env, host, clock, feishu
):
    config = tmp_path / "outbox.toml"
    split = 'workers = 1\n\n[channels.ops]\noverflow = "split"\nmax_parts = 3\nmsgtype = "text"'
    text = CONFIG.replace("workers = 2\n\n[channels.ops]", split)
    config.write_text(f'{text}\n[outbox]\npath = "outbox.db"\nbackoff_initial = 5\n')
    feishu.refuse_next(1, plugin.TOO_MANY_REQUESTS, after=1)  # the second part, once
    with dispatcher(config, env, host, clock) as d:
        [first] = d.dispatch(attrs.evolve(huge_alert(3 * BODY_LIMIT), severity="warning"))
        assert first.outcome is Outcome.QUEUED
        assert "part 2/3 failed, 1 sent before it; a retry starts at part 2" in first.error
        clock.advance(120)  # past the minute Feishu's "too many request" asks for
        d.outbox.drain()
        assert d.outbox.store.counts() == {"ops": {"delivered": 1}}
    texts = [m.text for m in feishu.messages]
    assert [t[:6] for t in texts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert len(set(texts)) == 3


def test_a_wrong_secret_fails_permanently_and_shows_no_credential(
    config, env, host, clock, feishu, caplog
):
    caplog.set_level(logging.DEBUG)
    env = {**env, "FEISHU_OPS_SECRET": "notTheBotsSecret"}
    with dispatcher(config, env, host, clock) as d:
        [receipt] = d.dispatch(Alert(title="disk"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.details.items() >= {"code": 19021, "retryable": False}.items()
    assert receipt.error.startswith("channel 'ops', send: code 19021: sign match fail")
    shown = json.dumps(receipt.to_dict()) + caplog.text
    for secret in (OPS_TOKEN, OPS_SECRET, "notTheBotsSecret"):
        assert secret not in shown


def test_a_frequency_limit_fails_retryably_and_holds_the_bot_back(config, env, host, clock, feishu):
    feishu.fail_next(1, code=FREQUENCY_LIMITED)
    with dispatcher(config, env, host, clock) as d:
        [first] = d.dispatch(Alert(title="one"))
        before = clock.monotonic()
        [second] = d.dispatch(Alert(title="two"))
    assert first.details.items() >= {"code": 11232, "retryable": True, "retry_after": 60.0}.items()
    assert second.outcome is Outcome.DELIVERED
    assert clock.monotonic() - before >= 60.0


def run_cli(*args, env):
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_sends_through_feishu_and_reports_receipts_without_secrets(config):
    # The CLI signs with the real clock, so this fake checks against the real clock too.
    with FakeFeishu({OPS_TOKEN: OPS_SECRET, ONCALL_TOKEN: None}) as live:
        env = environment(live)
        sent = run_cli(
            "send", "-vv", "--config", str(config), "--title", "磁盘写满 🔥",
            "--severity", "critical", "--json", env=env,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        receipts = {r["channel"]: r["outcome"] for r in json.loads(sent.stdout)}
        assert receipts == {"oncall": "delivered", "ops": "delivered"}
        assert len(live.messages) == 2
        for secret in (OPS_TOKEN, OPS_SECRET, ONCALL_TOKEN):
            assert secret not in sent.stdout + sent.stderr

        live.bots[OPS_TOKEN] = "rotatedSecret"
        failed = run_cli("send", "--config", str(config), "--title", "again", env=env)
        assert failed.returncode == 1
        assert "code 19021: sign match fail" in failed.stdout + failed.stderr
