"""Configuration: option combinations a WeCom channel cannot work with are reported with
the file, the option's path and what was expected, all at once, never quoting a secret."""

from __future__ import annotations

import pytest
from notifier_wework import plugin
from notifier_wework.kinds import KINDS

from notifier.config import parse_channel
from notifier.dispatcher import Dispatcher
from notifier.errors import ConfigError
from notifier.plugins import PluginHost

DIRECT = {"kind": "wework", "corp_id": "ww1", "secret": "s3cr3t-direct"}
KIND = {kind.name: kind for kind in KINDS}


@pytest.fixture(scope="module")
def host():
    return PluginHost.from_plugins([plugin])


def issues_for(host, table, name="ops"):
    # Cross-option rules run when the config is loaded (so `notifier check` shows them).
    with pytest.raises(ConfigError) as caught:
        parse_channel(name, table, host, file="notifier.toml")
    return {(i.file, i.path): i.expected for i in caught.value.issues}, str(caught.value)


@pytest.mark.parametrize(
    ("table", "path", "expected"),
    [
        ({**DIRECT, "chat_id": "c1", "agent_id": 1}, "agent_id", "not both"),
        ({**DIRECT, "agent_id": 1}, "to_user", "at least one of to_user, to_party, to_tag"),
        ({**DIRECT, "chat_id": "c1", "to_party": ["2"]}, "to_party", "only with agent_id"),
        ({**DIRECT, "to_tag": ["2"]}, "to_tag", "only with agent_id"),
        (
            {**DIRECT, "chat_id": "c1", "enable_duplicate_check": True},
            "enable_duplicate_check",
            "application messages only",
        ),
        (
            {**DIRECT, "agent_id": 1, "to_tag": ["1"], "duplicate_check_interval": 20000},
            "duplicate_check_interval",
            "at most 14400 seconds",
        ),
        ({**DIRECT, "chat_id": "ops-1"}, "chat_id", "1 to 32 letters and digits"),
        ({**DIRECT, "chat_id": "c1", "api_root": "qyapi.weixin.qq.com"}, "api_root", "https://"),
    ],
)
def test_a_direct_channel_needs_one_coherent_target(host, table, path, expected):
    issues, _ = issues_for(host, table)
    assert expected in issues[("notifier.toml", f"channels.ops.{path}")]


def test_a_robot_key_given_as_the_whole_webhook_url_is_refused_without_echoing_it(host):
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"
    issues, text = issues_for(host, {"kind": "wework-robot", "key": url})
    assert (
        "the value after key= in the webhook URL" in issues[("notifier.toml", "channels.ops.key")]
    )
    assert "693a91f6-7xxx" not in text


def test_a_gateway_root_must_be_a_url(host):
    table = {
        "kind": "wework-gateway",
        "gateway_root": "bkapi.example.com/wecom",
        "app_code": "a",
        "app_secret": "b",
        "username": "c",
        "chat_id": "c1",
    }
    issues, _ = issues_for(host, table)
    assert ("notifier.toml", "channels.ops.gateway_root") in issues


def test_format_options_take_only_their_choices(host):
    with pytest.raises(ConfigError) as caught:
        parse_channel(
            "ops",
            {**DIRECT, "chat_id": "c1", "msgtype": "news", "overflow": "drop"},
            host,
            file="notifier.toml",
        )
    paths = {i.path for i in caught.value.issues}
    assert paths == {"channels.ops.msgtype", "channels.ops.overflow"}


def test_every_channels_problems_are_reported_together_when_the_dispatcher_starts(tmp_path, host):
    config = tmp_path / "notifier.toml"
    config.write_text(
        """
[channels.a]
kind = "wework"
corp_id = "ww1"
secret = "s3cr3t-a"
chat_id = "c1"
agent_id = 1000002

[channels.b]
kind = "wework"
corp_id = "ww1"
secret = "s3cr3t-b"
agent_id = 1000002

[channels.c]
kind = "wework-robot"
key = "k"
api_root = "ftp://example.com"
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        Dispatcher.from_config(config, host=host)
    paths = sorted(i.path for i in caught.value.issues)
    assert paths == ["channels.a.agent_id", "channels.b.to_user", "channels.c.api_root"]
    assert all(i.file == str(config) for i in caught.value.issues)
    assert "s3cr3t" not in str(caught.value)


def test_each_kind_declares_the_fixed_option_names_and_marks_credentials_secret(host):
    names = {kind: [opt.name for opt in host.kinds[kind].options] for kind in KIND}
    assert names["wework"][:8] == [
        "api_root",
        "corp_id",
        "secret",
        "chat_id",
        "agent_id",
        "to_user",
        "to_party",
        "to_tag",
    ]
    for kind in KIND:
        assert {"msgtype", "overflow", "connect_timeout", "read_timeout"} <= set(names[kind])
    assert {"gateway_root", "app_code", "app_secret", "username", "chat_id"} <= set(
        names["wework-gateway"]
    )
    assert {"key", "mentioned_list", "mentioned_mobile_list", "api_root"} <= set(
        names["wework-robot"]
    )
    secret = {k: [o.name for o in host.kinds[k].options if o.secret] for k in KIND}
    assert secret == {
        "wework": ["secret"],
        "wework-gateway": ["app_secret"],
        "wework-robot": ["key"],
    }
    assert all(host.kinds[k].plugin for k in KIND)
