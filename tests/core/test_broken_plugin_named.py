"""A channel whose kind's plugin failed to load is reported with that plugin and why,
not only as an unknown kind: in the config error and in ``notifier check``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from dists import install_dist

from notifier.cli.main import main
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.plugins import PluginHost

RAISING_KINDS = """
from notifier import hookimpl

@hookimpl
def notifier_channel_kinds():
    raise RuntimeError("the pager SDK is not configured")
"""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_kind_whose_plugin_failed_to_import_names_the_plugin_and_the_error(site: Path):
    install_dist(
        site, "notifier-pager", {"pager": "pager_plugin"}, {"pager_plugin.py": "import no_sdk\n"}
    )
    host = PluginHost.load(env={})
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"oncall": {"kind": "pager-duty"}}}, host, "n.toml")
    (issue,) = caught.value.issues
    assert issue.path == "channels.oncall.kind"
    assert "an installed channel kind, got 'pager-duty'" in issue.expected
    assert "plugin 'pager' (notifier-pager) failed to load" in issue.expected
    assert "No module named 'no_sdk'" in issue.expected


def test_a_kind_whose_plugin_hook_raises_names_the_plugin_and_the_error(site: Path):
    install_dist(
        site, "notifier-pager", {"pager": "pager_plugin"}, {"pager_plugin.py": RAISING_KINDS}
    )
    host = PluginHost.load(env={})
    with pytest.raises(ConfigError, match="the pager SDK is not configured") as caught:
        parse_config({"channels": {"oncall": {"kind": "pager"}}}, host)
    assert "(notifier-pager) failed to load" in str(caught.value)


def test_check_names_the_broken_plugin_in_the_error_for_the_channel(
    site: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("NOTIFIER_DISABLE_PLUGINS", raising=False)
    install_dist(
        site, "notifier-pager", {"pager": "pager_plugin"}, {"pager_plugin.py": "import no_sdk\n"}
    )
    config = tmp_path / "n.toml"
    config.write_text('[channels.oncall]\nkind = "pager"\n', encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "channels.oncall.kind: an installed channel kind, got 'pager'" in err
    assert "plugin 'pager' (notifier-pager) failed to load: ModuleNotFoundError" in err


def test_an_unknown_kind_with_no_broken_plugin_says_only_what_is_installed():
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"x": {"kind": "nope"}}}, PluginHost.from_plugins([]))
    assert "failed to load" not in str(caught.value)
