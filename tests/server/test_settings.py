"""``[server]``: its defaults, its validation, and credentials kept secret."""

from __future__ import annotations

import pytest

from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.plugins import PluginHost
from notifier.server.settings import DEFAULT_LISTEN, MAX_BODY_BYTES


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.load()


def parsed(host: PluginHost, server: object, env: dict[str, str] | None = None):
    return parse_config({"server": server}, host, "n.toml", env or {}).server


def test_defaults(host):
    settings = parse_config({}, host).server
    assert settings.listen == DEFAULT_LISTEN == "127.0.0.1:9095"
    assert settings.max_body_bytes == MAX_BODY_BYTES == 1024 * 1024
    assert settings.anonymous


def test_tokens_and_users_from_strings_and_the_environment_stay_secret(host):
    settings = parsed(
        host,
        {"tokens": ["literal-token", {"env": "TOK"}], "users": {"prom": {"env": "PASS"}}},
        {"TOK": "env-token", "PASS": "env-pass"},
    )
    assert [t.reveal() for t in settings.tokens] == ["literal-token", "env-token"]
    assert settings.users["prom"].reveal() == "env-pass"
    shown = repr(settings)
    assert "literal-token" not in shown and "env-token" not in shown and "env-pass" not in shown


@pytest.mark.parametrize(
    ("server", "where", "problem"),
    [
        ({"listen": "0.0.0.0:9095"}, "server", "needs tokens or users"),
        ({"listen": "[::]:9095"}, "server", "needs tokens or users"),
        ({"listen": "9095"}, "server.listen", "expected HOST:PORT"),
        ({"listen": "host:99999"}, "server.listen", "port number"),
        ({"tokens": "abc"}, "server.tokens", "a list of tokens"),
        ({"tokens": [""]}, "server.tokens[0]", "non-empty string"),
        ({"tokens": [{"env": "MISSING"}]}, "server.tokens[0]", "MISSING is not set"),
        ({"users": {"a:b": "x"}}, "server.users.a:b", "without a colon"),
        ({"max_body_bytes": 0}, "server.max_body_bytes", "whole number of bytes"),
        ({"max_body_bytes": "1MB"}, "server.max_body_bytes", "whole number of bytes"),
        ({"allow_anonymous": "yes"}, "server.allow_anonymous", "true or false"),
        ({"listne": "x"}, "server.listne", "no such key"),
    ],
)
def test_invalid_server_tables_name_what_is_wrong(host, server, where, problem):
    with pytest.raises(ConfigError) as caught:
        parsed(host, server)
    issues = [(i.path, i.expected) for i in caught.value.issues]
    assert any(path == where and problem in text for path, text in issues), issues


def test_beyond_loopback_with_credentials_or_explicitly_anonymous(host):
    assert parsed(host, {"listen": "0.0.0.0:9095", "tokens": ["t"]}).listen == "0.0.0.0:9095"
    assert parsed(host, {"listen": "0.0.0.0:9095", "allow_anonymous": True}).allow_anonymous


def test_listen_flag_is_held_to_the_same_rule(host):
    settings = parsed(host, {})
    assert settings.listening_on("127.0.0.1:0").listen == "127.0.0.1:0"
    with pytest.raises(ConfigError, match="needs tokens or users"):
        settings.listening_on("0.0.0.0:9095")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        settings.listening_on("nonsense")
