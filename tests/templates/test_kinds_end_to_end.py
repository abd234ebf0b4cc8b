"""Every kind rendered through a custom template, end to end against its fake provider:
the template fills the part the kind documents, route templates win over channel ones,
and ``mention_labels`` become each kind's own mention form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN
from notifier_feishu.testing import BOT_SECRET, BOT_TOKEN

from notifier import Alert, Dispatcher
from notifier.models import GroupSpec, Outcome

ROBOT_KEY = "fake-robot-key-0001"
TEMPLATE = "T| {{ alert.title }} | {{ alert.labels.service }} | {{ alert.starts_at | localtime }}"
HOOK_TEMPLATE = '{{ {"text": "T| " ~ alert.title, "owner": alert.labels.owner} | tojson }}'
AT = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)


def _config(tmp_path: Path, p: dict[str, Any], routes: str = "") -> tuple[Path, dict[str, str]]:
    wecom, smtp = p["wecom"], p["smtp"]
    env = {
        "WECOM_SECRET": wecom.secret,
        "ROBOT_KEY": ROBOT_KEY,
        "GATEWAY_SECRET": "fake-gateway-secret-0001",
        "DINGTALK_TOKEN": ROBOT_TOKEN,
        "DINGTALK_SECRET": ROBOT_SECRET,
        "FEISHU_URL": p["feishu"].webhook_url(BOT_TOKEN),
        "FEISHU_SECRET": BOT_SECRET,
        "SLACK_URL": p["slack"].webhook("#alerts"),
        "SMTP_PASSWORD": smtp.password,
    }
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "mail.html.j2").write_text(
        "<p>T| {{ alert.title }}</p><p>{{ alert.body }}</p>", encoding="utf-8"
    )
    path = tmp_path / "notifier.toml"
    tpl = f"template = {{ text = {json.dumps(TEMPLATE)} }}"
    path.write_text(
        f"""
[render]
timezone = "Asia/Shanghai"

[channels.wecom]
kind = "wework"
api_root = "{wecom.api_root}"
corp_id = "{wecom.corp_id}"
secret = {{ env = "WECOM_SECRET" }}
chat_id = "opsroom"
{tpl}

[channels.gw]
kind = "wework-gateway"
gateway_root = "{wecom.gateway_root}"
app_code = "fake-app"
app_secret = {{ env = "GATEWAY_SECRET" }}
username = "alert-bot"
chat_id = "gw1"
{tpl}

[channels.robot]
kind = "wework-robot"
api_root = "{wecom.api_root}"
key = {{ env = "ROBOT_KEY" }}
mention_labels = ["owner"]
{tpl}

[channels.robot-md]
kind = "wework-robot"
api_root = "{wecom.api_root}"
key = {{ env = "ROBOT_KEY" }}
msgtype = "markdown"
mention_labels = ["owner"]
{tpl}

[channels.dingtalk]
kind = "dingtalk-robot"
api_root = "{p["dingtalk"].api_root}"
access_token = {{ env = "DINGTALK_TOKEN" }}
secret = {{ env = "DINGTALK_SECRET" }}
mention_labels = ["owner"]
{tpl}

[channels.feishu]
kind = "feishu-bot"
url = {{ env = "FEISHU_URL" }}
secret = {{ env = "FEISHU_SECRET" }}
mention_labels = ["owner"]
{tpl}

[channels.slack]
kind = "slack"
url = {{ env = "SLACK_URL" }}
{tpl}

[channels.email]
kind = "email"
host = "{smtp.host}"
port = {smtp.port}
username = "{smtp.username}"
password = {{ env = "SMTP_PASSWORD" }}
from = "Alerts <alerts@example.com>"
to = ["ops@example.com"]
template = {{ file = "templates/mail.html.j2" }}

[channels.hook]
kind = "webhook"
url = "{p["hook"].url}/in"
template = {{ text = '{HOOK_TEMPLATE}' }}

[channels.console]
kind = "console"
{tpl}

[channels.jsonl]
kind = "jsonl"
path = "out.jsonl"
{tpl}
{routes}
""",
        encoding="utf-8",
    )
    return path, env


ALERT = Alert(
    title="支付网关超时",
    body="<b>p99</b> > 2 s",
    severity="critical",
    labels={"service": "payments", "owner": "13800000001, zhangsan"},
    starts_at=AT,
)
EXPECTED = "T| 支付网关超时 | payments | 2026-01-01 08:30:00 CST"


def _dispatch(tmp_path: Path, providers: dict[str, Any], routes: str = "") -> dict[str, Any]:
    path, env = _config(tmp_path, providers, routes)
    with Dispatcher.from_config(path, env=env) as dispatcher:
        dispatcher.create_group(
            "wecom", GroupSpec(name="ops", owner="zhangsan", members=("zhangsan", "lisi"),
                               chat_id="opsroom"),
        )  # fmt: skip
        dispatcher.create_group(
            "gw", GroupSpec(name="gw", owner="zhangsan", members=("zhangsan", "lisi"))
        )
        receipts = {r.channel: r for r in dispatcher.dispatch(ALERT)}
    assert {r.outcome for r in receipts.values()} == {Outcome.DELIVERED}, receipts
    return receipts


def test_every_kind_sends_its_template_with_the_time_in_the_render_timezone(
    tmp_path: Path, providers, capsys
) -> None:
    _dispatch(tmp_path, providers)
    wecom = providers["wecom"]
    assert wecom.chat_messages("opsroom")[0].body["text"]["content"] == EXPECTED
    assert wecom.chat_messages("gw1")[0].body["text"]["content"] == EXPECTED
    markdown, text = sorted(wecom.robot_messages(ROBOT_KEY), key=lambda m: m.msgtype)
    assert text.body["text"]["content"] == EXPECTED
    assert markdown.body["markdown"]["content"].startswith(EXPECTED)
    assert providers["dingtalk"].messages[0].content.startswith(EXPECTED)
    feishu = providers["feishu"].messages[0].body["card"]
    assert feishu["elements"][0]["text"]["content"] == EXPECTED  # the card's body
    assert feishu["header"]["template"] == "red"  # the header stays the kind's own
    slack = providers["slack"].messages()[0]
    assert slack.text == EXPECTED
    assert {"type": "section", "text": {"type": "mrkdwn", "text": EXPECTED}} in slack.blocks
    html = providers["smtp"].messages[0].part("html")
    assert "<p>T| 支付网关超时</p><p>&lt;b&gt;p99&lt;/b&gt; &gt; 2 s</p>" in html  # autoescaped
    assert providers["hook"].requests[0].json() == {
        "text": "T| 支付网关超时",
        "owner": "13800000001, zhangsan",
    }
    assert f"[console] {EXPECTED}" in capsys.readouterr().out
    record = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    assert record["message"] == EXPECTED and record["alert"]["title"] == "支付网关超时"


def test_mention_labels_become_each_kinds_mention_form(tmp_path: Path, providers) -> None:
    _dispatch(tmp_path, providers)
    robot = providers["wecom"].robot_messages(ROBOT_KEY)
    markdown, text = sorted(robot, key=lambda m: m.msgtype)
    assert text.body["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert text.body["text"]["mentioned_list"] == ["zhangsan"]
    assert markdown.body["markdown"]["content"].endswith("<@zhangsan>")
    at = providers["dingtalk"].messages[0].mentions
    assert at["atMobiles"] == ["13800000001"] and at["atUserIds"] == ["zhangsan"]
    assert "@13800000001 @zhangsan" in providers["dingtalk"].messages[0].content
    elements = providers["feishu"].messages[0].body["card"]["elements"]
    assert elements[-1]["text"]["content"] == "<at id=13800000001></at> <at id=zhangsan></at>"


def test_a_route_template_wins_over_the_channel_template_for_its_alerts(
    tmp_path: Path, providers
) -> None:
    routes = """
[[routes]]
labels = { service = "payments" }
channels = ["robot", "dingtalk"]
template = { text = "ROUTE {{ alert.title }} {{ group.counts.total }}" }

[[routes]]
channels = ["robot", "dingtalk"]
"""
    _dispatch(tmp_path, providers, routes)
    (sent,) = providers["wecom"].robot_messages(ROBOT_KEY)
    assert sent.body["text"]["content"] == "ROUTE 支付网关超时 1"
    assert providers["dingtalk"].messages[0].content.startswith("ROUTE 支付网关超时 1")


def test_alert_text_in_a_slack_or_feishu_template_cannot_forge_a_mention(
    tmp_path: Path, providers
) -> None:
    path, env = _config(tmp_path, providers)
    forged = Alert(title="<!channel> <at id=all></at> & co", labels={"service": "x"}, starts_at=AT)
    with Dispatcher.from_config(path, env=env) as dispatcher:
        receipts = [dispatcher.deliver(name, forged) for name in ("slack", "feishu")]
    assert all(r.ok for r in receipts), receipts
    slack = providers["slack"].messages()[0].text
    assert slack.startswith("T| &lt;!channel&gt; &lt;at id=all&gt;&lt;/at&gt; &amp; co | x |")
    card = providers["feishu"].messages[0].body["card"]
    assert card["elements"][0]["text"]["content"].startswith("T| &lt;!channel&gt; &lt;at id=all")
