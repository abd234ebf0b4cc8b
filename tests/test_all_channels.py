"""One alert to WeCom, DingTalk, Feishu, Slack and email at once, through the installed
plugins and their real local fake providers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN, FakeDingTalk
from notifier_email.testing import FakeSMTP
from notifier_feishu.testing import BOT_SECRET, BOT_TOKEN, FakeFeishu
from notifier_slack.testing import FakeSlack
from notifier_wework.testing import FakeWeCom

from notifier import Alert, Dispatcher
from notifier.models import GroupSpec, Outcome


@pytest.fixture
def providers() -> Iterator[dict[str, Any]]:
    with (
        FakeWeCom() as wecom,
        FakeDingTalk() as dingtalk,
        FakeFeishu() as feishu,
        FakeSlack() as slack,
        FakeSMTP() as smtp,
    ):
        yield {"wecom": wecom, "dingtalk": dingtalk, "feishu": feishu, "slack": slack, "smtp": smtp}


def _config(tmp_path: Path, p: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    wecom, smtp = p["wecom"], p["smtp"]
    env = {
        "WECOM_SECRET": wecom.secret,
        "DINGTALK_TOKEN": ROBOT_TOKEN,
        "DINGTALK_SECRET": ROBOT_SECRET,
        "FEISHU_URL": p["feishu"].webhook_url(BOT_TOKEN),
        "FEISHU_SECRET": BOT_SECRET,
        "SLACK_URL": p["slack"].webhook("#alerts"),
        "SMTP_PASSWORD": smtp.password,
    }
    path = tmp_path / "notifier.toml"
    path.write_text(
        f"""
[channels.wecom]
kind = "wework"
api_root = "{wecom.api_root}"
corp_id = "{wecom.corp_id}"
secret = {{ env = "WECOM_SECRET" }}
chat_id = "opsroom"

[channels.dingtalk]
kind = "dingtalk-robot"
api_root = "{p["dingtalk"].api_root}"
access_token = {{ env = "DINGTALK_TOKEN" }}
secret = {{ env = "DINGTALK_SECRET" }}

[channels.feishu]
kind = "feishu-bot"
url = {{ env = "FEISHU_URL" }}
secret = {{ env = "FEISHU_SECRET" }}

[channels.slack]
kind = "slack"
url = {{ env = "SLACK_URL" }}
delivery_timeout = 0.5

[channels.email]
kind = "email"
host = "{smtp.host}"
port = {smtp.port}
username = "{smtp.username}"
password = {{ env = "SMTP_PASSWORD" }}
from = "Alerts <alerts@example.com>"
to = ["ops@example.com"]

[[routes]]
severity = ["critical"]
channels = ["wecom", "dingtalk", "feishu", "slack", "email"]
""",
        encoding="utf-8",
    )
    return path, env


def test_one_alert_reaches_all_five_providers(tmp_path: Path, providers) -> None:
    path, env = _config(tmp_path, providers)
    alert = Alert(
        title="支付网关超时 🚨",
        body="p99 > 2 s",
        severity="critical",
        labels={"service": "payments"},
    )
    with Dispatcher.from_config(path, env=env) as dispatcher:
        group = dispatcher.create_group(
            "wecom",
            GroupSpec(
                name="ops", owner="zhangsan", members=("zhangsan", "lisi"), chat_id="opsroom"
            ),
        )
        assert group.chat_id == "opsroom"
        receipts = {r.channel: r for r in dispatcher.dispatch(alert)}
    assert {name: r.outcome for name, r in receipts.items()} == dict.fromkeys(
        ("wecom", "dingtalk", "feishu", "slack", "email"), Outcome.DELIVERED
    )
    assert "支付网关超时" in providers["wecom"].chat_messages("opsroom")[0].content
    assert "支付网关超时" in providers["dingtalk"].messages[0].content
    assert providers["feishu"].messages[0].body["card"]  # signature verified by the fake
    assert "支付网关超时" in json.dumps(
        providers["slack"].messages()[0].payload, ensure_ascii=False
    )
    assert "支付网关超时" in providers["smtp"].messages[0].subject
    secrets = [v for k, v in env.items() if k != "FEISHU_URL"]
    dumped = json.dumps([r.to_dict() for r in receipts.values()], ensure_ascii=False)
    assert not [s for s in secrets if s in dumped]


def test_a_failing_and_a_hanging_provider_neither_delay_nor_stop_the_others(
    tmp_path: Path, providers
) -> None:
    path, env = _config(tmp_path, providers)
    providers["slack"].delay_next(30)  # hangs far past its 0.5 s delivery_timeout
    providers["dingtalk"].fail_next(5, status=500)  # every attempt fails
    with Dispatcher.from_config(path, env=env) as dispatcher:
        dispatcher.create_group(
            "wecom",
            GroupSpec(
                name="ops", owner="zhangsan", members=("zhangsan", "lisi"), chat_id="opsroom"
            ),
        )
        started = time.monotonic()
        receipts = {
            r.channel: r for r in dispatcher.dispatch(Alert(title="db down", severity="critical"))
        }
        elapsed = time.monotonic() - started
    assert receipts["slack"].outcome is Outcome.FAILED
    # The delivery's deadline ends the HTTP attempt and the dispatcher's wait at the same
    # moment: either may report it first.
    assert re.search(
        r"did not finish within 0\.5 ?s|timed out after 0\.5 s", receipts["slack"].error or ""
    )
    assert receipts["dingtalk"].outcome is Outcome.FAILED
    for name in ("wecom", "feishu", "email"):
        assert receipts[name].outcome is Outcome.DELIVERED, receipts[name].error
        # Delivered while Slack hung: none waited for the slow one.
        assert receipts[name].latency_ms < 500
    assert elapsed < 10  # bounded by the Slack timeout and DingTalk's retries, not by 30 s
