"""Plugin discovery through real dist-infos: third-party kinds, conflicts, failures."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from dists import install_dist, install_example_plugin

from notifier import Alert, Dispatcher, hookimpl
from notifier.config import parse_config
from notifier.errors import DuplicateKindError, UnsupportedOperation
from notifier.kinds import ChannelKind
from notifier.models import GroupSpec
from notifier.plugins import BUILTINS, PluginHost

KIND_PLUGIN = """
from notifier import hookimpl
from notifier.kinds import ChannelKind

@hookimpl
def notifier_channel_kinds():
    return [ChannelKind(name={kind!r}, build=lambda spec, ctx: object())]
"""


def test_out_of_tree_plugin_is_discovered_configured_and_dispatched_to(site: Path) -> None:
    install_example_plugin(site)
    host = PluginHost.load(env={})
    assert host.kinds["memo"].plugin == "notifier-memo"
    memo = site.parent / "memo.txt"
    config = parse_config(
        {"channels": {"notes": {"kind": "memo", "path": str(memo), "prefix": "ops"}}}, host
    )
    with Dispatcher(config, host=host) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="disk full", severity="critical"))
    assert receipt.ok and receipt.message_id and receipt.message_id.startswith("memo-")
    assert memo.read_text() == "ops: critical disk full\n"


def test_builtins_are_ordinary_plugins_of_the_core_distribution() -> None:
    host = PluginHost.load(env={})
    assert {"console", "jsonl", "webhook"} <= set(host.kinds)
    assert all(host.kinds[k].plugin == "notifier-core" for k in ("console", "jsonl", "webhook"))
    assert len(BUILTINS) == 3


def test_two_distributions_claiming_one_kind_is_an_error_naming_both(site: Path) -> None:
    for dist, module in (("notifier-alpha", "alpha_plugin"), ("notifier-beta", "beta_plugin")):
        install_dist(site, dist, {module: module}, {f"{module}.py": KIND_PLUGIN.format(kind="x")})
    host = PluginHost.load(env={})
    with pytest.raises(DuplicateKindError) as caught:
        _ = host.kinds
    assert {caught.value.first, caught.value.second} == {"notifier-alpha", "notifier-beta"}
    assert "notifier-alpha" in str(caught.value) and "notifier-beta" in str(caught.value)


def test_a_plugin_claiming_a_builtin_kind_is_refused_too(site: Path) -> None:
    install_dist(
        site,
        "notifier-copycat",
        {"copycat": "copycat"},
        {"copycat.py": KIND_PLUGIN.format(kind="jsonl")},
    )
    with pytest.raises(DuplicateKindError, match="notifier-copycat"):
        _ = PluginHost.load(env={}).kinds


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_dist(
        site,
        "notifier-broken",
        {"broken": "broken_plugin"},
        {"broken_plugin.py": "import no_such_module_anywhere\n"},
    )
    install_example_plugin(site)
    with caplog.at_level(logging.WARNING, logger="notifier.plugins"):
        host = PluginHost.load(env={})
    (problem,) = host.problems
    assert problem.dist == "notifier-broken" and "no_such_module_anywhere" in problem.error
    assert "memo" in host.kinds  # the others keep working
    assert "notifier-broken" in caplog.text


def test_an_environment_variable_disables_named_plugins(site: Path) -> None:
    install_example_plugin(site)
    host = PluginHost.load(env={"NOTIFIER_DISABLE_PLUGINS": "notifier-memo, console"})
    assert "memo" not in host.kinds and "console" not in host.kinds
    assert "jsonl" in host.kinds
    disabled = {r.name for r in host.records if r.status == "disabled"}
    assert disabled == {"memo", "console"}
    by_entry_point = PluginHost.load(env={"NOTIFIER_DISABLE_PLUGINS": "memo"})
    assert "memo" not in by_entry_point.kinds


def test_a_plugin_implementing_an_unknown_hook_is_dropped_with_a_clear_report(
    site: Path,
) -> None:
    source = "from notifier import hookimpl\n\n@hookimpl\ndef notifier_sned(channel):\n    pass\n"
    install_dist(site, "notifier-typo", {"typo": "typo_plugin"}, {"typo_plugin.py": source})
    install_example_plugin(site)
    host = PluginHost.load(env={})
    (problem,) = host.problems
    assert problem.dist == "notifier-typo" and "notifier_sned" in problem.error
    assert not host.pm.has_plugin("typo")
    assert "memo" in host.kinds


def test_a_plugin_whose_kind_hook_raises_loses_only_its_own_kinds() -> None:
    class Raises:
        @hookimpl
        def notifier_channel_kinds(self) -> list[ChannelKind]:
            raise RuntimeError("cannot list")

    host = PluginHost.from_plugins([Raises()])
    assert "jsonl" in host.kinds
    assert any("cannot list" in p.error for p in host.problems)


def test_a_kind_that_cannot_create_groups_says_so(tmp_path: Path) -> None:
    host = PluginHost.from_plugins([])
    config = parse_config(
        {"channels": {"audit": {"kind": "jsonl", "path": "a.jsonl"}}}, host, base_dir=tmp_path
    )
    with Dispatcher(config, host=host) as dispatcher:
        with pytest.raises(UnsupportedOperation, match=r"kind 'jsonl'.*cannot manage group"):
            dispatcher.create_group("audit", _group())
        with pytest.raises(UnsupportedOperation, match="no channel named 'nope'"):
            dispatcher.create_group("nope", _group())


def _group() -> GroupSpec:
    return GroupSpec(name="ops", owner="u1", members=("u1", "u2"))
