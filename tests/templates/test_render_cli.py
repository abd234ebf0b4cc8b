"""``notifier render`` shows exactly what a channel sends; ``notifier check`` renders every
template against sample alerts and names the file and line of each problem."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN, FakeDingTalk
from notifier_wework.testing import FakeWeCom

from notifier.cli.main import main

ROBOT_KEY = "fake-robot-key-0001"
CJK_LINE = "支付网关超时，华东区下单失败率上升。🚨\n"  # noqa: RUF001 - a Chinese comma


@pytest.fixture
def fakes() -> Iterator[tuple[FakeWeCom, FakeDingTalk]]:
    with FakeWeCom() as wecom, FakeDingTalk() as dingtalk:
        yield wecom, dingtalk


@pytest.fixture
def config(tmp_path: Path, fakes, monkeypatch) -> Path:
    wecom, dingtalk = fakes
    monkeypatch.setenv("ROBOT_KEY", ROBOT_KEY)
    monkeypatch.setenv("DINGTALK_TOKEN", ROBOT_TOKEN)
    monkeypatch.setenv("DINGTALK_SECRET", ROBOT_SECRET)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "long.j2").write_text(
        "{{ alert.title }}\n{% for i in range(60) %}" + CJK_LINE + "{% endfor %}",
        encoding="utf-8",
    )
    (tmp_path / "templates" / "group.j2").write_text(
        "{{ group.counts.firing }} firing, {{ group.counts.resolved }} resolved"
        " ({{ group.common_labels.alertname | default(alert.title) }})\n"
        "{% for a in group.alerts %}- [{{ a.status }}] {{ a.title }}"
        " {{ a.starts_at | localtime('%H:%M') }}\n{% endfor %}",
        encoding="utf-8",
    )
    path = tmp_path / "notifier.toml"
    path.write_text(
        f"""
[render]
timezone = "Asia/Shanghai"

[channels.robot]
kind = "wework-robot"
api_root = "{wecom.api_root}"
key = {{ env = "ROBOT_KEY" }}
mention_labels = ["owner"]
template = {{ text = "[{{{{ alert.severity }}}}] {{{{ alert.title }}}}: {{{{ alert.body }}}}" }}

[channels.long]
kind = "wework-robot"
api_root = "{wecom.api_root}"
key = {{ env = "ROBOT_KEY" }}
overflow = "split"
template = {{ file = "templates/long.j2" }}

[channels.ding]
kind = "dingtalk-robot"
api_root = "{dingtalk.api_root}"
access_token = {{ env = "DINGTALK_TOKEN" }}
secret = {{ env = "DINGTALK_SECRET" }}
mention_labels = ["owner"]
template = {{ file = "templates/group.j2" }}
""",
        encoding="utf-8",
    )
    return path


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


ALERT = ("--title", "db down", "--body", "p99 > 2 s", "--label", "owner=13800000001,zhangsan")


@pytest.mark.parametrize("channel", ["robot", "ding", "long"])
def test_render_prints_exactly_what_the_fake_provider_then_receives(
    config: Path, fakes, capsys, channel: str
) -> None:
    wecom, dingtalk = fakes
    code, out, _ = _run(capsys, "render", "-c", str(config), "--channel", channel, "--json", *ALERT)
    assert code == 0
    (rendered,) = json.loads(out)
    payloads = [part["payload"] for part in rendered["parts"]]
    assert wecom.sent == [] and dingtalk.messages == []  # render sends nothing

    route = f'\n[[routes]]\nchannels = ["{channel}"]\n'
    config.write_text(config.read_text(encoding="utf-8") + route, encoding="utf-8")
    code, out, _ = _run(capsys, "send", "-c", str(config), "--json", *ALERT)
    assert code == 0, out
    received = [m.body for m in (dingtalk.messages if channel == "ding" else wecom.sent)]
    assert [dict(body) for body in received] == payloads


def test_render_shows_each_part_with_its_size_and_the_providers_limit(config, capsys) -> None:
    code, out, _ = _run(capsys, "render", "-c", str(config), "--channel", "robot", *ALERT)
    assert code == 0
    content = "[warning] db down: p99 > 2 s"
    assert out.splitlines() == [
        "== robot (wework-robot): 'db down': 1 message(s)",
        f"-- part 1/1: {len(content)} of 2048 bytes",
        content,
    ]


def test_a_cjk_template_over_the_limit_splits_on_character_boundaries(
    config: Path, fakes, capsys
) -> None:
    code, out, _ = _run(capsys, "render", "-c", str(config), "--channel", "long", "--json", *ALERT)
    parts = json.loads(out)[0]["parts"]
    assert code == 0 and len(parts) == 2
    assert all(p["size"] <= 2048 and p["limit"] == 2048 for p in parts)
    assert all(p["size"] == len(p["content"].encode("utf-8")) for p in parts)
    text = "".join(p["content"].split(") ", 1)[1] for p in parts)  # without "(1/2) "
    assert text == ("db down\n" + CJK_LINE * 60).rstrip()
    assert "\ufffd" not in text


def test_render_an_alertmanager_notification_as_one_grouped_message(
    config: Path, tmp_path: Path, capsys
) -> None:
    notification = {
        "version": "4",
        "status": "firing",
        "receiver": "ops",
        "groupKey": '{}:{alertname="HighLatency"}',
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "job": "db"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighLatency", "instance": "db-1", "owner": "zhangsan"},
                "annotations": {"summary": "db-1 is slow", "description": "p99 2.4 s"},
                "startsAt": "2026-01-01T00:30:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": "a1",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "HighLatency", "instance": "db-2"},
                "annotations": {"summary": "db-2 is slow"},
                "startsAt": "2026-01-01T00:10:00Z",
                "endsAt": "2026-01-01T00:40:00Z",
                "fingerprint": "a2",
            },
        ],
    }
    path = tmp_path / "am.json"
    path.write_text(json.dumps(notification), encoding="utf-8")
    code, out, _ = _run(
        capsys, "render", "-c", str(config), "--channel", "ding", "--alertmanager", str(path)
    )
    assert code == 0
    assert out.splitlines()[2:] == [
        "1 firing, 1 resolved (HighLatency)",
        "- [firing] db-1 is slow 08:30",
        "- [resolved] db-2 is slow 08:10",
        "",
        "@zhangsan",  # mention_labels of every alert in the group
    ]


def test_render_names_an_unknown_channel(config: Path, capsys) -> None:
    code, _, err = _run(capsys, "render", "-c", str(config), "--channel", "nope", *ALERT)
    assert code == 2 and "no channel named 'nope'" in err and "robot" in err


def _checked(tmp_path: Path, capsys, template: str) -> tuple[int, str, str]:
    (tmp_path / "t.j2").write_text(template, encoding="utf-8")
    path = tmp_path / "c.toml"
    path.write_text(
        '[channels.out]\nkind = "console"\ntemplate = { file = "t.j2" }\n', encoding="utf-8"
    )
    return _run(capsys, "check", "-c", str(path))


def test_check_reports_a_syntax_error_with_file_and_line(tmp_path: Path, capsys) -> None:
    code, _, err = _checked(tmp_path, capsys, "{{ alert.title }}\n{% for a in alerts %}")
    assert code == 2
    assert f"channels.out.template: a valid template: {tmp_path / 't.j2'}:2:" in err


def test_check_reports_an_undefined_name_with_file_and_line(tmp_path: Path, capsys) -> None:
    code, out, err = _checked(tmp_path, capsys, "{{ alert.title }}\n\n{{ alert.titel }}")
    assert code == 2 and "OK" not in out
    assert f"channels.out.template: template {tmp_path / 't.j2'}:3: " in err
    assert "has no attribute 'titel'" in err


def test_check_passes_a_template_that_renders_every_sample(tmp_path: Path, capsys) -> None:
    template = (
        "{{ group.counts.total }} {{ alert.title | truncate_bytes(20) }}"
        " {{ alert.starts_at | localtime }}{% if alert.resolved %} after"
        " {{ alert.duration | duration }}{% endif %}"
    )
    code, out, err = _checked(tmp_path, capsys, template)
    assert code == 0 and "OK, 1 channel(s)" in out, err


def test_render_shows_escape_sequences_in_alert_text_instead_of_obeying_them(
    config: Path, capsys
) -> None:
    code, out, _ = _run(
        capsys, "render", "-c", str(config), "--channel", "robot", "--title", "x\x1b[2Jy"
    )
    assert code == 0 and "\x1b" not in out and "x\\x1b[2Jy" in out


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))


def test_render_takes_an_alert_as_json_on_stdin_or_every_alert_of_a_file(
    config: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    args = ("render", "-c", str(config), "--channel", "robot", "--json")
    code, out, _ = _run(capsys, *args, *ALERT)
    assert code == 0
    (from_flags,) = json.loads(out)

    alert = {"title": "db down", "body": "p99 > 2 s", "labels": {"owner": "13800000001,zhangsan"}}
    _stdin(monkeypatch, json.dumps(alert))
    code, out, _ = _run(capsys, *args)
    assert code == 0 and json.loads(out) == [from_flags]

    lines = tmp_path / "alerts.jsonl"
    other = {**alert, "title": "disk full", "severity": "critical"}
    lines.write_text(f"{json.dumps(alert)}\n{json.dumps(other)}\n", encoding="utf-8")
    code, out, _ = _run(capsys, *args, "--file", str(lines))
    first, second = json.loads(out)
    assert code == 0 and first == from_flags
    assert second["parts"][0]["content"] == "[critical] disk full: p99 > 2 s"


def test_render_reads_an_alertmanager_notification_from_stdin(
    config: Path, capsys, monkeypatch
) -> None:
    notification = {
        "version": "4",
        "status": "resolved",
        "alerts": [
            {
                "status": "resolved",
                "labels": {"alertname": "DiskFull", "severity": "critical"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "2026-01-01T00:30:00Z",
            }
        ],
    }
    _stdin(monkeypatch, json.dumps(notification))
    args = ("render", "-c", str(config), "--channel", "robot", "--alertmanager", "-")
    code, out, _ = _run(capsys, *args)
    # What notifier serve sends for it: the group's message, each alert a line.
    assert code == 0
    assert out.splitlines()[-1] == (
        "[critical] DiskFull: 0 firing, 1 resolved: "
        "[RESOLVED] critical: DiskFull since 2026-01-01 00:00 UTC"
    )


def test_render_names_what_is_wrong_with_an_alertmanager_notification(
    config: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "am.json"
    path.write_text('{"version": "4", "status": "firing", "alerts": []}', encoding="utf-8")
    args = ("render", "-c", str(config), "--channel", "robot", "--alertmanager", str(path))
    code, out, err = _run(capsys, *args)
    assert code == 2 and out == ""
    assert f"{path}: not an Alertmanager notification: alerts: expected a non-empty" in err


def test_check_names_the_sample_a_template_fails_for(tmp_path: Path, capsys) -> None:
    template = "{{ alert.title }}\n{% if alert.resolved %}{{ alert.ended }}{% endif %}"
    code, _, err = _checked(tmp_path, capsys, template)
    assert code == 2
    where = f"template {tmp_path / 't.j2'}:2: "
    assert f"{where}'dict object' has no attribute 'ended' (sample: a resolved alert)" in err
