"""docs/channels/email.md documents every option and its example config loads."""

from __future__ import annotations

import re
from pathlib import Path

from notifier_email import plugin
from notifier_email.plugin import OPTIONS

from notifier.config import load_config
from notifier.plugins import PluginHost

DOC = Path(__file__).parents[3] / "docs" / "channels" / "email.md"


def test_the_docs_page_shows_every_option_and_a_config_that_loads(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Options", 1)[1].split("\n## ", 1)[0]
    assert [o.name for o in OPTIONS if f"| `{o.name}` |" not in table] == []
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "notifier.toml"
    path.write_text(example, encoding="utf-8")
    config = load_config(path, PluginHost.from_plugins([plugin]), env={"SMTP_PASSWORD": "x"})
    assert config.channels["oncall-mail"].kind == "email"
