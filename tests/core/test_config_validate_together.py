"""A kind's ``validate`` issues are reported together with its options' own errors."""

from __future__ import annotations

from typing import Any

import pytest

from notifier import hookimpl
from notifier.config import parse_config
from notifier.errors import ConfigError, ConfigIssue
from notifier.kinds import ChannelKind, ChannelSpec, Option
from notifier.plugins import PluginHost


def _validate(spec: ChannelSpec) -> list[ConfigIssue]:
    where = f"channels.{spec.name}"
    found = []
    if not str(spec.options["server"]).startswith("https://"):
        found.append(ConfigIssue(spec.source, f"{where}.server", "an https:// URL"))
    if spec.options["retries"] > 3:
        found.append(ConfigIssue(spec.source, f"{where}.retries", "at most 3"))
    if spec.options["topic"] == "all":
        found.append(ConfigIssue(spec.source, f"{where}.topic", "a topic other than 'all'"))
    return found


class Pager:
    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        options = (
            Option("server", default="https://pager.example.com"),
            Option("retries", int, default=1),
            Option("topic", required=True),
            Option("token", secret=True),
        )
        return [ChannelKind("pager", lambda spec, ctx: object(), options, validate=_validate)]


def problems(table: dict[str, Any]) -> dict[str, str]:
    host = PluginHost.from_plugins([Pager()])
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"p": {"kind": "pager", **table}}}, host, "n.toml")
    return {issue.path: issue.expected for issue in caught.value.issues}


def test_validate_issues_come_with_the_option_errors_in_one_report():
    found = problems({"server": "http://pager", "topic": "all", "retries": "many", "nope": 1})
    assert set(found) == {
        "channels.p.server",
        "channels.p.topic",
        "channels.p.retries",
        "channels.p.nope",
    }
    assert found["channels.p.server"] == "an https:// URL"
    assert found["channels.p.topic"] == "a topic other than 'all'"
    assert "integer" in found["channels.p.retries"]  # the option's own error, not a rule's


def test_a_rule_that_cannot_run_without_a_missing_option_waits_for_it():
    # topic is required and missing: the rule reading it raises; the option error stays.
    found = problems({"server": "http://pager"})
    assert set(found) == {"channels.p.topic"}
    assert found["channels.p.topic"].startswith("required")


def test_the_email_kind_reports_its_rules_and_a_wrong_type_at_once():
    host = PluginHost.load(env={})
    table = {"kind": "email", "host": "h", "port": "x", "tls": True, "starttls": True}
    table |= {"from": "a@example.com", "to": ["ops@example.com"]}
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"m": table}}, host, "n.toml")
    paths = {issue.path for issue in caught.value.issues}
    assert paths == {"channels.m.port", "channels.m.tls"}
