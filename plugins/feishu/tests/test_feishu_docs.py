"""docs/channels/feishu.md documents every option and error code, and its example loads."""

from __future__ import annotations

import re
from pathlib import Path

from notifier_feishu import plugin
from notifier_feishu.plugin import CODES, KEYWORDS_NOT_FOUND, OPTIONS, PARAMS_ERROR

from notifier.config import load_config
from notifier.plugins import PluginHost

DOC = Path(__file__).parents[3] / "docs" / "channels" / "feishu.md"


def section(text, title):
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_page_documents_every_option_and_every_error_code():
    text = DOC.read_text(encoding="utf-8")
    options = section(text, "Options")
    assert [o.name for o in OPTIONS if f"`{o.name}`" not in options] == []
    errors = section(text, "Errors")
    codes = CODES.auth | CODES.rate_limited | {KEYWORDS_NOT_FOUND, PARAMS_ERROR}
    assert sorted(c for c in codes if f"`{c}`" not in errors) == []


def test_the_example_config_loads_with_its_environment(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    path = tmp_path / "notifier.toml"
    path.write_text(re.search(r"```toml\n(.*?)```", text, re.S).group(1), encoding="utf-8")
    env = {
        "FEISHU_WEBHOOK_URL": "https://open.feishu.cn/open-apis/bot/v2/hook/abc-123",
        "FEISHU_SECRET": "secret-0001",
    }
    config = load_config(path, PluginHost.from_plugins([plugin]), env=env)
    assert config.channels["ops-feishu"].options["msgtype"] == "interactive"
