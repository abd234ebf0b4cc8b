"""The starter templates in examples/templates/: each renders through its kind, and
docs/templates.md shows each one, file for file, with exactly the output it renders."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN
from notifier_feishu.testing import BOT_SECRET, BOT_TOKEN

from notifier import Alert
from notifier.config import parse_config
from notifier.dispatcher import Dispatcher
from notifier.groups import AlertGroup
from notifier.models import Link
from notifier.plugins import PluginHost

ROOT = Path(__file__).resolve().parents[2]
STARTERS = ROOT / "examples" / "templates"
DOC = ROOT / "docs" / "templates.md"
ROBOT_KEY = "fake-robot-key-0001"
OFFLINE = "http://127.0.0.1:9/"  # rendering sends nothing; the address is never used

# starter file -> the channel it is shown with
CHANNELS: dict[str, dict[str, object]] = {
    "wework.md.j2": {
        "kind": "wework-robot",
        "key": "k",
        "api_root": OFFLINE,
        "msgtype": "markdown",
    },
    "wework-robot.txt.j2": {"kind": "wework-robot", "key": "k", "api_root": OFFLINE},
    "dingtalk.md.j2": {"kind": "dingtalk-robot", "access_token": "t", "api_root": OFFLINE},
    "feishu.md.j2": {"kind": "feishu-bot", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/x"},
    "slack.mrkdwn.j2": {"kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/x"},
    "email.html.j2": {
        "kind": "email",
        "host": "127.0.0.1",
        "port": 9,
        "from": "alerts@example.com",
        "to": ["ops@example.com"],
    },
    "webhook.json.j2": {"kind": "webhook", "url": OFFLINE + "hook"},
    "console.txt.j2": {"kind": "console"},
}

SAMPLE = Alert(
    title="High latency on db-1",
    body="p99 latency is 2.4 s (threshold 1 s)",
    severity="critical",
    labels={"alertname": "HighLatency", "instance": "db-1:9100", "service": "payments",
            "owner": "zhangsan"},
    starts_at=datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
    links=(Link("https://grafana.example.com/d/db", "Dashboard"),),
    fingerprint="3f2a9c1e",
)  # fmt: skip
RESOLVED = Alert(
    title="High latency on db-2",
    severity="critical",
    labels={"alertname": "HighLatency", "instance": "db-2:9100", "service": "payments"},
    status="resolved",
    starts_at=datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
    ends_at=datetime(2026, 1, 1, 0, 52, 30, tzinfo=UTC),
    fingerprint="77b0d4aa",
)
GROUP = AlertGroup((SAMPLE, RESOLVED), group_labels={"alertname": "HighLatency"})


def rendered(starter: str, item: Alert | AlertGroup, host: PluginHost) -> str:
    """What the starter's channel sends for ``item``, as docs/templates.md shows it."""
    channel = {**CHANNELS[starter], "template": {"file": starter}, "mention_labels": ["owner"]}
    data = {"render": {"timezone": "Asia/Shanghai"}, "channels": {"demo": channel}}
    config = parse_config(data, host, "demo.toml", {}, STARTERS)
    with Dispatcher(config, host=host) as dispatcher:
        parts = dispatcher.preview("demo", item)
    return "\n".join(part.content for part in parts)


def doc_blocks() -> dict[str, tuple[str, str, str]]:
    """Starter name -> (template block, rendered single alert, rendered group) in the doc."""
    text = DOC.read_text(encoding="utf-8")
    found = {}
    pattern = (
        r"### `examples/templates/([\w.-]+)`.*?```jinja\n(.*?)```"
        r".*?```text\n(.*?)```.*?```text\n(.*?)```"
    )
    for match in re.finditer(pattern, text, re.DOTALL):
        found[match.group(1)] = (match.group(2), match.group(3), match.group(4))
    return found


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.load()


def test_every_starter_template_has_a_channel_here() -> None:
    assert sorted(p.name for p in STARTERS.glob("*.j2")) == sorted(CHANNELS)


@pytest.mark.parametrize("starter", sorted(CHANNELS))
def test_the_docs_show_each_starter_and_exactly_what_it_renders(starter: str, host) -> None:
    blocks = doc_blocks()
    assert starter in blocks, f"docs/templates.md has no section for {starter}"
    template, single, group = blocks[starter]
    assert template == (STARTERS / starter).read_text(encoding="utf-8")
    assert single.rstrip("\n") == rendered(starter, SAMPLE, host).rstrip("\n")
    assert group.rstrip("\n") == rendered(starter, GROUP, host).rstrip("\n")


def _at_fakes(starter: str, fakes: dict[str, Any]) -> dict[str, object]:
    """The starter's channel pointed at its kind's fake provider."""
    wecom, smtp = fakes["wecom"], fakes["smtp"]
    overrides: dict[str, dict[str, object]] = {
        "wework.md.j2": {"api_root": wecom.api_root, "key": ROBOT_KEY},
        "wework-robot.txt.j2": {"api_root": wecom.api_root, "key": ROBOT_KEY},
        "dingtalk.md.j2": {
            "api_root": fakes["dingtalk"].api_root,
            "access_token": ROBOT_TOKEN,
            "secret": ROBOT_SECRET,
        },
        "feishu.md.j2": {"url": fakes["feishu"].webhook_url(BOT_TOKEN), "secret": BOT_SECRET},
        "slack.mrkdwn.j2": {"url": fakes["slack"].webhook("#alerts")},
        "email.html.j2": {
            "host": smtp.host,
            "port": smtp.port,
            "username": smtp.username,
            "password": smtp.password,
        },
        "webhook.json.j2": {"url": fakes["hook"].url + "/hook"},
        "console.txt.j2": {},
    }
    return {**CHANNELS[starter], **overrides[starter]}


def _received(starter: str, fakes: dict[str, Any], capsys) -> list[Any]:
    """What the starter's fake provider received, comparable with a preview's parts."""
    if starter.startswith("wework"):
        return [dict(m.body) for m in fakes["wecom"].robot_messages(ROBOT_KEY)]
    if starter == "dingtalk.md.j2":
        return [dict(m.body) for m in fakes["dingtalk"].messages]
    if starter == "feishu.md.j2":  # the signature is added when sending
        return [
            {k: v for k, v in m.body.items() if k not in ("timestamp", "sign")}
            for m in fakes["feishu"].messages
        ]
    if starter == "slack.mrkdwn.j2":
        return [m.payload for m in fakes["slack"].messages()]
    if starter == "email.html.j2":
        # SMTP carries lines ending in CRLF; the text is the same
        return [m.part("html").replace("\r\n", "\n") for m in fakes["smtp"].messages]
    if starter == "webhook.json.j2":
        return [r.json() for r in fakes["hook"].requests]
    return [capsys.readouterr().out.rstrip("\n")]


@pytest.mark.parametrize("starter", sorted(CHANNELS))
@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_each_starter_sends_its_fake_provider_exactly_what_render_shows(
    starter: str, status: str, providers, host, capsys
) -> None:
    channel = {
        **_at_fakes(starter, providers),
        "template": {"file": starter},
        "mention_labels": ["owner"],
    }
    data = {"render": {"timezone": "Asia/Shanghai"}, "channels": {"demo": channel}}
    config = parse_config(data, host, "demo.toml", {}, STARTERS)
    alert = (
        SAMPLE
        if status == "firing"
        else attrs.evolve(
            SAMPLE, status="resolved", ends_at=datetime(2026, 1, 1, 2, 5, 9, tzinfo=UTC)
        )
    )
    with Dispatcher(config, host=host) as dispatcher:
        parts = dispatcher.preview("demo", alert)
        receipt = dispatcher.deliver("demo", alert)
    assert receipt.ok, receipt
    # An email's preview is the whole MIME message (its date and id differ), and the
    # console prints text: compare what people read. Every other kind: the request body.
    plain = starter in ("email.html.j2", "console.txt.j2")
    shown = [part.content if plain else part.payload for part in parts]
    assert _received(starter, providers, capsys) == shown
