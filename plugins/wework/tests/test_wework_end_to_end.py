"""Every way into WeCom, end to end: a TOML file, the dispatcher, the CLI, the fake server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from notifier_wework import plugin
from wework_support import GATEWAY_SECRET, make_alert

from notifier.dispatcher import Dispatcher
from notifier.errors import UnsupportedOperation
from notifier.models import GroupSpec, Outcome
from notifier.plugins import PluginHost

ROBOT_KEY = "fake-robot-key-0001"

CONFIG = """
[dispatcher]
workers = 4

[channels.ops]                  # direct: an app group chat
kind = "wework"
api_root = "{api_root}"
corp_id = "{corp_id}"
secret = {{ env = "WECOM_SECRET" }}
chat_id = "ops1"

[channels.app]                  # direct: an application message
kind = "wework"
api_root = "{api_root}"
corp_id = "{corp_id}"
secret = {{ env = "WECOM_SECRET" }}
agent_id = {agent_id}
to_user = ["zhangsan", "ghost"]
to_party = ["1", "99"]
msgtype = "markdown"

[channels.gw]                   # the enterprise API gateway
kind = "wework-gateway"
gateway_root = "{gateway_root}"
app_code = "fake-app"
app_secret = {{ env = "GATEWAY_SECRET" }}
username = "alert-bot"
chat_id = "gw1"
msgtype = "markdown"

[channels.robot]                # a group robot, text with mentions
kind = "wework-robot"
api_root = "{api_root}"
key = {{ env = "ROBOT_KEY" }}
mentioned_list = ["zhangsan"]

[channels.robot-md]             # the same robot, markdown
kind = "wework-robot"
api_root = "{api_root}"
key = {{ env = "ROBOT_KEY" }}
msgtype = "markdown"

[[routes]]                      # critical: everyone on the robots, then the default route
severity = ["critical"]
channels = ["robot", "robot-md"]
mentions = ["@all", "lisi"]
continue = true

[[routes]]
channels = ["ops", "app", "gw", "robot", "robot-md"]
"""


@pytest.fixture
def env(wework_server):
    return {
        "WECOM_SECRET": wework_server.secret,
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "ROBOT_KEY": ROBOT_KEY,
    }


@pytest.fixture
def config(tmp_path, wework_server):
    path = tmp_path / "notifier.toml"
    path.write_text(
        CONFIG.format(
            api_root=wework_server.api_root,
            gateway_root=wework_server.gateway_root,
            corp_id=wework_server.corp_id,
            agent_id=wework_server.agent_id,
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def host():
    return PluginHost.from_plugins([plugin])


@pytest.fixture
def dispatcher(config, env, host, wework_clock):
    with Dispatcher.from_config(config, env=env, host=host, clock=wework_clock) as dispatcher:
        yield dispatcher


def secrets_of(server):
    return [server.secret, GATEWAY_SECRET, ROBOT_KEY, *server.issued_tokens]


# -- through the dispatcher -----------------------------------------------------------------


def test_groups_are_created_through_the_dispatcher_then_every_way_in_delivers(
    dispatcher, wework_server
):
    oncall = GroupSpec("oncall", owner="zhangsan", members=["lisi", "wangwu"])
    assert dispatcher.create_group("ops", oncall).chat_id == "ops1"
    assert dispatcher.create_group("gw", oncall).chat_id == "gw1"
    with pytest.raises(UnsupportedOperation, match="kind 'wework-robot'"):
        dispatcher.create_group("robot", oncall)

    receipts = dispatcher.dispatch(make_alert(severity="critical", body="/data 98%"))

    by_channel = {r.channel: r for r in receipts}
    assert sorted(by_channel) == ["app", "gw", "ops", "robot", "robot-md"]
    assert all(r.outcome is Outcome.DELIVERED for r in receipts), receipts
    assert by_channel["app"].details == {"invaliduser": ["ghost"], "invalidparty": ["99"]}
    assert by_channel["app"].message_id == wework_server.app_messages()[0].msgid
    assert wework_server.chat_messages("ops1")[0].content.startswith("[FIRING][CRITICAL] 磁盘将满")
    assert wework_server.chat_messages("gw1")[0].msgtype == "markdown"
    markdown, text = sorted(wework_server.robot_messages(ROBOT_KEY), key=lambda s: s.msgtype)
    assert markdown.msgtype == "markdown" and markdown.content.endswith("<@lisi>")
    assert text.body["text"]["mentioned_list"] == ["zhangsan", "@all", "lisi"]
    assert by_channel["robot-md"].details == {"mentions_not_sent": ["@all"]}


def test_permanent_errors_become_failed_receipts_that_name_channel_and_code_without_secrets(
    config, env, host, wework_clock, wework_server, debug_logs
):
    wework_server.disable_robot(ROBOT_KEY)  # 93004 for both robots
    bad = {**env, "WECOM_SECRET": "wrong-secret-0000", "GATEWAY_SECRET": "wrong-gw-0000"}
    with Dispatcher.from_config(config, env=bad, host=host, clock=wework_clock) as dispatcher:
        receipts = dispatcher.dispatch(make_alert())

    by_channel = {r.channel: r for r in receipts}
    assert all(r.outcome is Outcome.FAILED and not r.details["retryable"] for r in receipts)
    assert by_channel["ops"].error.startswith("channel 'ops', gettoken: errcode 40001:")
    assert "gateway code 1640001: the gateway rejected" in by_channel["gw"].error
    assert "errcode 93004: the robot was disabled" in by_channel["robot"].error
    output = json.dumps([r.to_dict() for r in receipts], ensure_ascii=False) + debug_logs.text
    for secret in [*secrets_of(wework_server), "wrong-secret-0000", "wrong-gw-0000"]:
        assert secret not in output


def test_an_unknown_chat_is_a_failed_receipt_telling_the_operator_to_create_it(dispatcher):
    (receipt,) = [r for r in dispatcher.dispatch(make_alert()) if r.channel == "ops"]
    assert receipt.outcome is Outcome.FAILED and receipt.details["code"] == 86001
    assert "create the group first (notifier group create)" in receipt.error


def test_45_robot_messages_in_a_burst_all_arrive_never_more_than_20_in_any_minute(
    tmp_path, wework_server, wework_clock, host
):
    path = tmp_path / "robot.toml"
    path.write_text(
        f"""
[dispatcher]
workers = 1  # one at a time: the fake clock jumps while the pacer waits

[channels.robot]
kind = "wework-robot"
api_root = "{wework_server.api_root}"
key = "{ROBOT_KEY}"
""",
        encoding="utf-8",
    )
    start = wework_clock.monotonic()
    alerts = [make_alert(f"burst {i}") for i in range(45)]
    with Dispatcher.from_config(path, host=host, clock=wework_clock) as dispatcher:
        receipts = dispatcher.dispatch_many(alerts)

    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 45
    assert [r.attempts for r in receipts] == [1] * 45  # the robot never refused one
    times = [s.at - start for s in wework_server.robot_messages()]
    assert len(times) == 45
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) == 20
    # 20 at once, 20 a minute later, the last 5 a minute after (plus the pacer's
    # one-second margin per window, for network jitter at the window's edge)
    assert times[-1] == 122
    titles = [s.content.split("\n")[0] for s in wework_server.robot_messages()]
    assert titles == [f"[FIRING][WARNING] burst {i}" for i in range(45)]


# -- through the CLI ------------------------------------------------------------------------


def run_cli(*args, env):
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_creates_groups_then_sends_through_every_way_in(config, env, wework_server):
    created = run_cli(
        "group", "create", "--config", str(config), "--channel", "ops", "--name", "oncall",
        "--owner", "zhangsan", "--member", "lisi", "--member", "wangwu", "--json", env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {
        "chat_id": "ops1",
        "name": "oncall",
        "owner": "zhangsan",
        "members": ["zhangsan", "lisi", "wangwu"],
    }
    gateway = run_cli(
        "group", "create", "-c", str(config), "--channel", "gw", "--name", "oncall",
        "--member", "zhangsan", "--member", "lisi", "--chat-id", "gw1", env=env,
    )  # fmt: skip
    assert gateway.returncode == 0 and gateway.stdout == "gw1\n", gateway.stderr

    sent = run_cli(
        "send", "-vv", "--config", str(config), "--title", "数据库主从延迟", "--severity",
        "critical", "--body", "lag 120s 🔥", "--json", env=env,
    )  # fmt: skip

    assert sent.returncode == 0, sent.stderr
    receipts = {r["channel"]: r for r in json.loads(sent.stdout)}
    assert {name: r["outcome"] for name, r in receipts.items()} == dict.fromkeys(
        ["robot", "robot-md", "ops", "app", "gw"], "delivered"
    )
    assert receipts["app"]["details"]["invaliduser"] == ["ghost"]
    assert receipts["app"]["message_id"] == wework_server.app_messages()[0].msgid
    (chat,) = wework_server.chat_messages("ops1")
    assert chat.content.startswith("[FIRING][CRITICAL] 数据库主从延迟\nlag 120s 🔥")
    assert len(wework_server.chat_messages("gw1")) == 1
    assert {s.msgtype for s in wework_server.robot_messages()} == {"text", "markdown"}
    assert "webhook/send?key=***" in sent.stderr  # the DEBUG request lines, masked
    for secret in secrets_of(wework_server):
        assert secret not in sent.stdout + sent.stderr + created.stdout + created.stderr


def test_the_cli_refuses_to_create_a_group_through_a_robot(config, env):
    result = run_cli(
        "group", "create", "-c", str(config), "--channel", "robot", "--name", "x",
        "--member", "a", "--member", "b", env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "kind 'wework-robot', which cannot manage group chats" in result.stderr
