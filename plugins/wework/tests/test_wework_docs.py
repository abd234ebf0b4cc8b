"""The provider facts the WeCom plugin relies on are in its docs page, which it cites."""

from __future__ import annotations

import re
from pathlib import Path

import notifier_wework
from notifier_wework import channels, messages

ROOT = Path(__file__).parents[3]
DOC = ROOT / "docs" / "channels" / "wework.md"
FACTS = "## What WeCom does, as this plugin relies on it"


def facts() -> str:
    text = DOC.read_text(encoding="utf-8")
    assert FACTS in text, f"{DOC.name} has no section {FACTS!r}"
    return text.split(FACTS, 1)[1].split("\n## ", 1)[0]


def test_every_document_the_plugin_cites_is_in_the_project():
    package = Path(notifier_wework.__file__).parent
    tests = [p for p in Path(__file__).parent.glob("*.py") if p.name != Path(__file__).name]
    sources = [*package.glob("*.py"), *tests]
    cited = {
        (source.name, name)
        for source in sources
        for name in re.findall(r"[\w./-]+\.md\b", source.read_text(encoding="utf-8"))
    }
    assert cited, "the plugin cites its docs page for the provider's facts"
    missing = sorted((src, name) for src, name in cited if not (ROOT / name).is_file())
    assert missing == [], f"cited but not in the project: {missing}"


def test_the_facts_section_states_the_limits_the_plugin_enforces():
    section = facts()
    for number in (
        messages.TEXT_LIMIT,
        messages.MARKDOWN_LIMIT,
        messages.NEWS_TITLE_LIMIT,
        messages.NEWS_DESCRIPTION_LIMIT,
        channels.CHAT_NAME_CHARS,
    ):
        assert re.search(rf"\b{number}\b", section), f"{number} is not in the facts section"
    for field in channels.PARTIAL_FIELDS:
        assert f"`{field}`" in section
