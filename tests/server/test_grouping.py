"""One message per channel per notification, cut at alert boundaries over the limit."""

from __future__ import annotations

import json

import requests
from notifier_wework.testing import FakeWeCom

from notifier.alertmanager import parse_notification
from notifier.clock import FakeClock
from notifier.server import create_app
from tests.server.conftest import serving, write_config
from tests.server.samples import am_alert, notification


def _accepted_and_delivered(app, body):
    """Post ``body`` to ``app`` as Alertmanager would, then deliver what it accepted."""
    with serving(app) as url:
        answer = requests.post(url + "/api/v1/alertmanager", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
    app.engine.drain(until_idle=True)
    return answer


def test_a_storm_of_200_alerts_reaches_a_wecom_robot_as_a_handful_of_messages(tmp_path):
    clock = FakeClock()
    with FakeWeCom(clock=clock) as wecom:
        config = write_config(
            tmp_path,
            f"""
[channels.robot]
kind = "wework-robot"
key = "fake-robot-key-0001"
api_root = "{wecom.api_root}"
msgtype = "markdown"

[outbox]
path = "outbox.db"
""",
        )
        app = create_app(config, clock=clock, deliver=False)
        try:
            answer = _accepted_and_delivered(app, notification([am_alert(n) for n in range(200)]))
        finally:
            app.close()
        messages = [m.content or "" for m in wecom.robot_messages("fake-robot-key-0001")]
    assert 2 <= len(messages) <= 12, len(messages)
    assert all(len(m.encode()) <= 4096 for m in messages)
    listed = [line for m in messages for line in m.splitlines() if line.startswith("[FIRING]")]
    # every alert once, each whole in one message
    assert sorted(listed) == sorted(set(listed))
    assert len(listed) == 200
    assert len(answer.json()["ids"]) == len(messages)


def test_a_resolve_is_its_own_message_and_a_repeat_is_not_sent_again(tmp_path):
    config = write_config(
        tmp_path,
        """
[channels.audit]
kind = "jsonl"
path = "audit.jsonl"
[outbox]
path = "outbox.db"
""",
    )
    app = create_app(config, deliver=False)
    try:
        with serving(app) as url:
            firing = notification([am_alert(1), am_alert(2)])
            resolved = notification([am_alert(1, "resolved"), am_alert(2, "resolved")])
            for body in (firing, firing, resolved):
                requests.post(url + "/api/v1/alertmanager", json=body, timeout=10)
                app.engine.drain(until_idle=True)
    finally:
        app.close()
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    titles = [json.loads(line)["alert"]["title"] for line in lines]
    assert titles == ["DiskFull: 2 firing, 0 resolved (alertname=DiskFull)",
                      "DiskFull: 0 firing, 2 resolved (alertname=DiskFull)"]  # fmt: skip


def test_10000_alerts_in_one_notification_are_accepted_each_message_mentioning_all(tmp_path):
    """Cut into hundreds of messages, each within the provider's limit, each alert in
    exactly one, each message with every owner's mention (merged once per channel: the
    answer time is in docs/serve.md)."""
    config = write_config(
        tmp_path,
        """
[channels.robot]
kind = "wework-robot"
key = "fake-robot-key-0001"

[[routes]]
channels = ["robot"]
mention_labels = ["owner"]

[outbox]
path = "outbox.db"

[server]
max_body_bytes = 8388608
""",
    )
    owners = {17: "alice", 5003: "bob", 9999: "carol"}
    alerts = [am_alert(n, **({"owner": owners[n]} if n in owners else {})) for n in range(10000)]
    app = create_app(config, deliver=False)
    try:
        with serving(app) as url:
            body = json.dumps(notification(alerts)).encode()
            answer = requests.post(url + "/api/v1/alertmanager", data=body, timeout=60)
        assert answer.status_code == 200, answer.text
        ids = answer.json()["ids"]
        stored = app.engine.store.get(ids)
    finally:
        app.close()
    assert answer.json()["accepted"] == 10000 and len(stored) == len(ids) > 100
    listed = []
    for delivery in stored.values():
        assert delivery.mentions == ("alice", "bob", "carol")
        lines = delivery.alert().body.splitlines()
        assert len("\n".join(lines).encode()) <= 4096
        listed += [line.split(": Disk full on ")[1].split(" ")[0] for line in lines]
    assert sorted(listed) == sorted(f"host-{n}" for n in range(10000))


def test_a_channels_template_sees_every_alert_of_the_notification_as_it_renders(tmp_path):
    """The message is delivered with its group: a template's ``group`` is the
    notification's alerts on the channel (not a group of one summary), with their own
    labels for mentions, and ``notifier render --alertmanager`` shows the same."""
    clock = FakeClock()
    template = (
        "{{ group.counts.firing }} firing, {{ group.counts.resolved }} resolved:"
        "{% for a in group.alerts %} {{ a.labels.instance }}={{ a.status }}{% endfor %}"
    )
    with FakeWeCom(clock=clock) as wecom:
        config = write_config(
            tmp_path,
            f"""
[channels.robot]
kind = "wework-robot"
key = "fake-robot-key-0001"
api_root = "{wecom.api_root}"
mention_labels = ["owner"]
template = {{ text = "{template}" }}

[outbox]
path = "outbox.db"
""",
        )
        body = notification(
            [am_alert(1, owner="alice"), am_alert(2, owner="bob"), am_alert(3, "resolved")]
        )
        app = create_app(config, clock=clock, deliver=False)
        try:
            _accepted_and_delivered(app, body)
            [preview] = app.dispatcher.preview("robot", parse_notification(body))
        finally:
            app.close()
        [sent] = wecom.robot_messages("fake-robot-key-0001")
    expected = "2 firing, 1 resolved: host-1=firing host-2=firing host-3=resolved"
    assert (sent.content or "").startswith(expected)
    # Each alert's owner, from its own labels (the summary's common labels have none).
    assert sorted(sent.body[sent.msgtype]["mentioned_list"]) == ["alice", "bob"]
    assert preview.content == sent.content
