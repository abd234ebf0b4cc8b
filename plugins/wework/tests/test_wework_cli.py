"""The ``notifier`` command against the fake WeCom: what it says about groups, a busy
provider and a robot's rate limit, and the exit status it says it with."""

from __future__ import annotations

import json
import logging

import attrs
import pytest
from notifier_wework.testing import Chat

from notifier.cli.main import main

ROBOT_KEY = "fake-robot-key-0001"


@attrs.frozen
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """``cli(*args)``: ``notifier ARGS`` in this process, its output captured."""

    def run(*args):
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = main(list(args))
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


@pytest.fixture
def config(tmp_path, wework_server):
    path = tmp_path / "notifier.toml"
    path.write_text(
        f"""
[channels.ops]
kind = "wework"
api_root = "{wework_server.api_root}"
corp_id = "{wework_server.corp_id}"
secret = "{wework_server.secret}"

[channels.robot]
kind = "wework-robot"
api_root = "{wework_server.api_root}"
key = "{ROBOT_KEY}"

[[routes]]
channels = ["robot"]
""",
        encoding="utf-8",
    )
    return path


def test_group_show_prints_the_name_owner_and_members(cli, config, wework_server):
    wework_server.chats["ops1"] = Chat("ops1", "DB on-call", "zhangsan", ["zhangsan", "lisi"])
    shown = cli("group", "show", "-c", str(config), "--channel", "ops", "--chat-id", "ops1")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "chat id:  ops1",
        "name:     DB on-call",
        "owner:    zhangsan",
        "members:  zhangsan, lisi",
    ]
    as_json = cli("group", "show", "-c", str(config), "--channel", "ops", "--chat-id", "ops1",
                  "--json")  # fmt: skip
    assert json.loads(as_json.stdout)["members"] == ["zhangsan", "lisi"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["group", "create", "--channel", "ops", "--name", "x", "--member", "lisi"],
            "a WeCom group chat needs at least 2 members, owner included; got 1",
        ),
        (
            ["group", "create", "--channel", "ops", "--name", "x", "--member", "a",
             "--member", "b", "--chat-id", "no such id!"],
            "a chat id is 1 to 32 letters and digits, got 'no such id!'",
        ),
        (
            ["group", "show", "--channel", "ops", "--chat-id", "no such id!"],
            "a chat id is 1 to 32 letters and digits",
        ),
        (
            ["group", "update", "--channel", "ops", "--chat-id", "x/../y", "--add", "lisi"],
            "a chat id is 1 to 32 letters and digits",
        ),
    ],
)  # fmt: skip
def test_a_group_request_refused_before_sending_is_a_usage_error(
    cli, config, wework_server, args, message
):
    done = cli(*args, "-c", str(config))
    assert done.returncode == 2
    assert message in done.stderr
    assert wework_server.chats == {}


def test_a_busy_wecom_without_an_outbox_is_not_said_to_be_retried_later(cli, config, wework_server):
    wework_server.fail_next(5, "errcode", errcode=-1)
    sent = cli("send", "-c", str(config), "--title", "disk full", "--json")
    assert sent.returncode == 1
    [receipt] = json.loads(sent.stdout)
    assert receipt["error"].startswith("channel 'robot', webhook/send: errcode -1: WeCom is busy")
    assert receipt["error"].endswith("not retried: configure [outbox] for retries (docs/outbox.md)")
    assert "retried later" not in sent.stdout + sent.stderr


def test_worker_once_says_what_it_waits_for(cli, config, wework_server, wework_clock, monkeypatch):
    import notifier.dispatcher

    monkeypatch.setattr(notifier.dispatcher, "SYSTEM_CLOCK", wework_clock)
    # One at a time, paced: no digest folds the burst.
    robot = 'kind = "wework-robot"'
    config.write_text(config.read_text().replace(robot, f"{robot}\ndigest_threshold = 0"))
    with config.open("a") as text:
        text.write(f'[outbox]\npath = "{config.parent / "outbox.db"}"\n')
    alerts = config.parent / "alerts.jsonl"
    alerts.write_text("".join(json.dumps({"title": f"burst {i}"}) + "\n" for i in range(21)))
    sent = cli("send", "-c", str(config), "--file", str(alerts), "--json")
    outcomes = [r["outcome"] for r in json.loads(sent.stdout)]
    assert outcomes == ["delivered"] * 20 + ["queued"]  # the robot's 20 a minute

    worked = cli("worker", "--once", "-c", str(config))
    assert worked.returncode == 0, worked.stderr
    # the window's 60 s and the pacer's one-second margin for jitter at its edge
    assert "notifier worker: waiting 61 s for channel robot's rate limit (20 per 60 s)" in (
        worked.stderr
    )
    assert len(wework_server.robot_messages()) == 21
