"""DingTalk end to end: a TOML file, the dispatcher and the CLI, against the fake DingTalk
(which verifies every signature)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import attrs
import pytest
from notifier_dingtalk import plugin
from notifier_dingtalk.messages import CONTENT_LIMIT
from notifier_dingtalk.plugin import TOO_FAST
from notifier_dingtalk.testing import FakeDingTalk

from notifier.clock import FakeClock
from notifier.dispatcher import Dispatcher
from notifier.models import Alert, Outcome
from notifier.plugins import PluginHost
from notifier.testing.samples import huge_alert

OPS_TOKEN, OPS_SECRET = "ops-robot-token-0001", "SECops0robot0signing0secret"
ONCALL_TOKEN = "oncall-robot-token-0002"

CONFIG = """
[dispatcher]
workers = 2

[channels.ops]
kind = "dingtalk-robot"
access_token = { env = "DINGTALK_OPS_TOKEN" }
secret = { env = "DINGTALK_OPS_SECRET" }
api_root = { env = "DINGTALK_API_ROOT" }

[channels.oncall]
kind = "dingtalk-robot"
access_token = { env = "DINGTALK_ONCALL_TOKEN" }
api_root = { env = "DINGTALK_API_ROOT" }
msgtype = "text"
at_mobiles = ["13800138000"]
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
def dingtalk(clock):
    with FakeDingTalk({OPS_TOKEN: OPS_SECRET, ONCALL_TOKEN: None}, clock=clock) as server:
        yield server


@pytest.fixture
def env(dingtalk):
    return {
        "DINGTALK_OPS_TOKEN": OPS_TOKEN,
        "DINGTALK_OPS_SECRET": OPS_SECRET,
        "DINGTALK_ONCALL_TOKEN": ONCALL_TOKEN,
        "DINGTALK_API_ROOT": dingtalk.api_root,
    }


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


def test_a_critical_alert_reaches_both_robots_signed_and_mentioning(
    config, env, host, clock, dingtalk
):
    with dispatcher(config, env, host, clock) as d:
        receipts = d.dispatch(Alert(title="订单库主从延迟", severity="critical"))
    assert {r.channel: r.outcome for r in receipts} == {
        "oncall": Outcome.DELIVERED,
        "ops": Outcome.DELIVERED,
    }
    by_token = {m.token: m for m in dingtalk.messages}
    assert by_token[OPS_TOKEN].msgtype == "markdown"  # its signature was verified
    assert by_token[ONCALL_TOKEN].mentions == {
        "atMobiles": ["13800138000"],
        "atUserIds": [],
        "isAtAll": True,
    }
    assert by_token[ONCALL_TOKEN].content.endswith("@13800138000")


def test_a_burst_is_paced_to_twenty_a_minute_and_never_throttled(
    tmp_path, env, host, clock, dingtalk
):
    # One worker: with two, one worker's pacing sleep moves the shared fake clock while
    # the other's request is in flight, which no real clock does.
    config = tmp_path / "burst.toml"
    config.write_text(CONFIG.replace("workers = 2", "workers = 1"), encoding="utf-8")
    start = clock.monotonic()
    with dispatcher(config, env, host, clock) as d:
        receipts = d.dispatch_many([Alert(title=f"burst {i}") for i in range(45)])
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 45
    assert TOO_FAST not in dingtalk.answers
    # 20 at once, 20 a minute later, 5 a minute after that (plus the pacer's safety margin).
    assert 120.0 <= clock.monotonic() - start <= 123.0


def test_split_alerts_are_paced_part_by_part(tmp_path, env, host, clock, dingtalk):
    config = tmp_path / "split.toml"
    # Long enough for the wait for a new minute to fit in one delivery's time budget.
    split = (
        'workers = 1\n\n[channels.ops]\noverflow = "split"\nmax_parts = 3\ndelivery_timeout = 90'
    )
    config.write_text(CONFIG.replace("workers = 2\n\n[channels.ops]", split), encoding="utf-8")
    start = clock.monotonic()
    with dispatcher(config, env, host, clock) as d:
        huge = huge_alert(3 * CONTENT_LIMIT)
        alerts = [attrs.evolve(huge, title=f"split {i}", severity="warning") for i in range(8)]
        receipts = d.dispatch_many(alerts)
    split = [(r.outcome, r.details.get("parts")) for r in receipts if r.channel == "ops"]
    assert split == [(Outcome.DELIVERED, 3)] * 8
    assert len(dingtalk.messages) == 24 and TOO_FAST not in dingtalk.answers
    assert clock.monotonic() - start >= 60.0  # the 21st message waited for a new minute


def test_a_part_whose_slot_comes_after_the_deadline_is_left_for_a_retry(
    tmp_path, env, host, clock, dingtalk
):
    config = tmp_path / "split.toml"
    split = 'workers = 1\n\n[channels.ops]\noverflow = "split"\nmax_parts = 3'
    config.write_text(CONFIG.replace("workers = 2\n\n[channels.ops]", split), encoding="utf-8")
    with dispatcher(config, env, host, clock) as d:
        huge = huge_alert(3 * CONTENT_LIMIT)
        alerts = [attrs.evolve(huge, title=f"split {i}", severity="warning") for i in range(7)]
        receipts = d.dispatch_many(alerts)
    ops = [r for r in receipts if r.channel == "ops"]
    assert [r.outcome for r in ops] == [Outcome.DELIVERED] * 6 + [Outcome.FAILED]
    # The 21st part's slot is a minute away, past the 30 s delivery_timeout: the
    # delivery stops there, retryable after the wait, instead of overrunning its budget.
    late = ops[-1]
    assert late.details["rate_limited"] and late.details["retryable"]
    assert 59.0 <= late.details["retry_after"] <= 62.0
    assert "rate limit 20/60s: next slot in" in late.error
    assert len(dingtalk.messages) == 20


def test_an_outbox_retry_of_a_split_alert_sends_only_the_parts_still_missing(
    tmp_path, env, host, clock, dingtalk
):
    config = tmp_path / "outbox.toml"
    split = 'workers = 1\n\n[channels.ops]\noverflow = "split"\nmax_parts = 3\nmsgtype = "text"'
    text = CONFIG.replace("workers = 2\n\n[channels.ops]", split)
    config.write_text(f'{text}\n[outbox]\npath = "outbox.db"\nbackoff_initial = 5\n')
    dingtalk.refuse_next(1, plugin.BUSY, after=1)  # the second part, once
    with dispatcher(config, env, host, clock) as d:
        [first] = d.dispatch(attrs.evolve(huge_alert(3 * CONTENT_LIMIT), severity="warning"))
        assert first.outcome is Outcome.QUEUED
        assert "part 2/3 failed, 1 sent before it; a retry starts at part 2" in first.error
        clock.advance(60)
        d.outbox.drain()
        assert d.outbox.store.counts() == {"ops": {"delivered": 1}}
    contents = [m.content for m in dingtalk.messages]
    assert [c[:6] for c in contents] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert len(set(contents)) == 3


def test_a_wrong_secret_fails_permanently_and_shows_no_credential(
    config, env, host, clock, dingtalk, caplog
):
    caplog.set_level(logging.DEBUG)
    env = {**env, "DINGTALK_OPS_SECRET": "SECnot0the0robots0secret"}
    with dispatcher(config, env, host, clock) as d:
        [receipt] = d.dispatch(Alert(title="disk"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.details.items() >= {"code": 310000, "retryable": False}.items()
    assert receipt.error == "channel 'ops', send: errcode 310000: sign not match"
    shown = json.dumps(receipt.to_dict()) + caplog.text
    for secret in (OPS_TOKEN, OPS_SECRET, "SECnot0the0robots0secret"):
        assert secret not in shown


def test_send_too_fast_fails_retryably_and_holds_the_robot_back(config, env, host, clock, dingtalk):
    dingtalk.fail_next(1, errcode=TOO_FAST)
    with dispatcher(config, env, host, clock) as d:
        [first] = d.dispatch(Alert(title="one"))
        before = clock.monotonic()
        [second] = d.dispatch(Alert(title="two"))
    assert first.outcome is Outcome.FAILED
    expected = {"code": TOO_FAST, "retryable": True, "retry_after": 600.0}
    assert first.details.items() >= expected.items()
    assert second.outcome is Outcome.DELIVERED
    assert clock.monotonic() - before >= 600.0


def run_cli(*args, env):
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_sends_through_dingtalk_and_reports_receipts_without_secrets(config, env, tmp_path):
    # The CLI signs with the real clock, so this fake checks against the real clock too.
    with FakeDingTalk({OPS_TOKEN: OPS_SECRET, ONCALL_TOKEN: None}) as live:
        env = {**env, "DINGTALK_API_ROOT": live.api_root}
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

        live.remove_robot(OPS_TOKEN)
        failed = run_cli("send", "--config", str(config), "--title", "again", env=env)
        assert failed.returncode == 1
        assert "errcode 300001: token is not exist" in failed.stdout + failed.stderr
