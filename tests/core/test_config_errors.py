"""Every class of configuration error: file, key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import find_config, load_config, parse_config
from notifier.errors import ConfigError
from notifier.plugins import PluginHost
from notifier.redact import Secret


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.from_plugins([])


def _issues(tmp_path: Path, text: str, host: PluginHost, env: dict | None = None) -> list[str]:
    path = tmp_path / "notifier.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, host, env=env or {})
    for issue in caught.value.issues:
        assert issue.file == str(path)
    return [f"{i.path} | {i.expected}" for i in caught.value.issues]


def test_missing_file_names_the_file(tmp_path: Path, host: PluginHost) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml", host, env={})
    assert str(caught.value) == f"{tmp_path / 'absent.toml'}: file not found"


def test_no_file_anywhere_says_how_to_give_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"--config FILE, set NOTIFIER_CONFIG, or create \./notifier\.toml"
    ):
        find_config(None, env={})
    assert find_config(None, env={"NOTIFIER_CONFIG": "x.toml"}) == Path("x.toml")


def test_bad_toml_gives_line_and_column(tmp_path: Path, host: PluginHost) -> None:
    (issue,) = _issues(tmp_path, "[channels.audit]\nkind = \n", host)
    assert issue.startswith(" | valid TOML:") and "line 2" in issue


def test_unknown_keys_are_errors_everywhere(tmp_path: Path, host: PluginHost) -> None:
    issues = _issues(
        tmp_path,
        """
        colour = "blue"
        [channels.audit]
        kind = "jsonl"
        path = "a.jsonl"
        pathh = "b"
        [dispatcher]
        worker = 4
        [[routes]]
        channels = ["audit"]
        severities = ["critical"]
        """,
        host,
    )
    assert issues[0].startswith("colour | no such top-level key")
    assert any(
        i.startswith("channels.audit.pathh | no such option for kind 'jsonl'")
        and "did you mean 'path'?" in i
        for i in issues
    )
    assert any(i.startswith("dispatcher.worker | no such option") for i in issues)
    assert any(i.startswith("routes[0].severities | no such route key") for i in issues)
    assert len(issues) == 4


def test_wrong_types_say_what_was_expected(tmp_path: Path, host: PluginHost) -> None:
    issues = _issues(
        tmp_path,
        """
        [dispatcher]
        workers = "many"
        [channels.audit]
        kind = "jsonl"
        path = 42
        fsync = "yes"
        rate_limit = { count = 0, per = 60 }
        [channels.hook]
        kind = "webhook"
        url = "http://127.0.0.1:1/x"
        headers = ["not", "a", "table"]
        """,
        host,
    )
    bare = [i.split(" (")[0] for i in issues]  # without the option's help text
    assert "dispatcher.workers | expected an integer >= 1 and <= 256, got string 'many'" in bare
    assert "channels.audit.path | expected a string, got number 42" in bare
    assert any(i.startswith("channels.audit.fsync | expected true or false") for i in issues)
    assert (
        "channels.audit.rate_limit.count | expected an integer >= 1 and <= 100000, got number 0"
        in bare
    )
    assert any(i.startswith("channels.hook.headers | expected a table of strings") for i in issues)


def test_unknown_kind_lists_installed_kinds_and_suggests(tmp_path: Path, host: PluginHost) -> None:
    (issue,) = _issues(tmp_path, '[channels.a]\nkind = "jsnol"\npath = "x"\n', host)
    assert issue.startswith("channels.a.kind | an installed channel kind, got 'jsnol'")
    assert "did you mean 'jsonl'?" in issue and "console" in issue


def test_route_to_an_undefined_channel(tmp_path: Path, host: PluginHost) -> None:
    issues = _issues(
        tmp_path,
        """
        [channels.audit]
        kind = "jsonl"
        path = "a.jsonl"
        [[routes]]
        channels = ["audit", "pager"]
        [[routes]]
        severity = ["urgent"]
        channels = []
        """,
        host,
    )
    assert issues == [
        "routes[0].channels[1] | a channel defined under [channels], got 'pager' (defined: audit)",
        "routes[1].channels | a non-empty list of channel names",
        "routes[1].severity | a list of severities from critical, error, warning, info",
    ]


def test_missing_environment_secret_names_the_variable_never_a_value(
    tmp_path: Path, host: PluginHost
) -> None:
    issues = _issues(
        tmp_path,
        """
        [channels.hook]
        kind = "webhook"
        url = { env = "HOOK_URL" }
        headers = { Authorization = { env = "HOOK_TOKEN" } }
        """,
        host,
        env={"HOOK_URL": "http://127.0.0.1:9/hook-s3cr3t-value"},
    )
    assert issues == [
        "channels.hook.headers.Authorization | environment variable HOOK_TOKEN "
        "is not set (expected a string)"
    ]
    assert "s3cr3t" not in " ".join(issues)


def test_every_problem_is_reported_at_once(tmp_path: Path, host: PluginHost) -> None:
    issues = _issues(
        tmp_path,
        """
        [channels.a]
        kind = "nope"
        [channels.b]
        kind = "jsonl"
        [[routes]]
        channels = ["c"]
        """,
        host,
    )
    assert [i.split(" | ")[0] for i in issues] == [
        "channels.a.kind",
        "channels.b.path",
        "routes[0].channels[0]",
    ]


def test_env_values_convert_to_the_option_type_and_secrets_are_wrapped(
    tmp_path: Path, host: PluginHost
) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        """
        [channels.audit]
        kind = "jsonl"
        path = { env = "AUDIT_PATH", default = "audit.jsonl" }
        fsync = { env = "AUDIT_FSYNC" }
        [channels.hook]
        kind = "webhook"
        url = { env = "HOOK_URL" }
        max_attempts = { env = "ATTEMPTS" }
        read_timeout = { env = "READ_TIMEOUT", default = "2.5" }
        """
    )
    env = {"AUDIT_FSYNC": "yes", "HOOK_URL": "http://127.0.0.1:9/h", "ATTEMPTS": "5"}
    config = load_config(path, host, env=env)
    audit, hook = config.channels["audit"], config.channels["hook"]
    assert audit.options["path"] == str(tmp_path / "audit.jsonl")  # relative to the file
    assert audit.options["fsync"] is True
    assert isinstance(hook.options["url"], Secret) and "127.0.0.1" not in repr(hook)
    assert hook.options["max_attempts"] == 5
    assert hook.options["read_timeout"] == 2.5  # a string default converts like the variable
    with pytest.raises(ConfigError, match=r"ATTEMPTS to hold an integer"):
        load_config(path, host, env={**env, "ATTEMPTS": "five"})


def test_kind_defaults_and_overrides_for_rate_limit(host: PluginHost) -> None:
    config = parse_config(
        {
            "channels": {
                "a": {"kind": "jsonl", "path": "a", "rate_limit": {"count": 5, "per": 1}},
                "b": {"kind": "jsonl", "path": "b", "delivery_timeout": 2},
            }
        },
        host,
    )
    assert (config.channels["a"].rate_limit.count, config.channels["a"].rate_limit.per) == (5, 1)
    assert config.channels["b"].rate_limit is None and config.channels["b"].timeout == 2.0


def test_outbox_settings_are_checked_with_the_rest(tmp_path: Path, host: PluginHost) -> None:
    issues = _issues(tmp_path, "[outbox]\nmax_attempt = 3\n", host)
    assert len(issues) == 1 and issues[0].startswith("outbox.max_attempt | no such key")
    path = tmp_path / "empty.toml"
    path.write_text("[outbox]\n")
    assert load_config(path, host, env={}).outbox == {}  # present: on, with defaults
    path.write_text("")
    assert load_config(path, host, env={}).outbox is None


def test_out_of_range_timestamps_are_invalid_alerts_not_crashes() -> None:
    from notifier.models import Alert

    with pytest.raises(ValueError, match="out of range"):
        Alert.from_dict({"title": "x", "starts_at": 1e20})


def test_an_empty_outbox_table_turns_durable_delivery_on(
    tmp_path: Path, host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifier import Dispatcher

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "n.toml"
    path.write_text('[channels.a]\nkind = "jsonl"\npath = "a.jsonl"\n\n[outbox]\n')
    with Dispatcher(load_config(path, host, env={}), host=host) as dispatcher:
        assert dispatcher.outbox is not None
        assert dispatcher.dispatch_many([]) == []
    assert (tmp_path / "data" / "notifier" / "outbox.db").is_file()
