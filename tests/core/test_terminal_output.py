"""Alert text printed to a terminal shows control characters as escapes instead of
letting the terminal act on them."""

from __future__ import annotations

import json
import logging

import pytest

from notifier import Alert, Dispatcher
from notifier.cli.main import main
from notifier.config import parse_config
from notifier.plugins import PluginHost
from notifier.terminal import visible, visible_json, visible_line

# Clear the screen, set the window title, colour text red, an 8-bit CSI, a bell, a
# carriage return that would overwrite the line, a right-to-left override.
HOSTILE = "db\x1b[2J\x1b]0;pwned\x07 down\x1b[31m!\x9b6n\r\u202eok"
SHOWN = "db\\x1b[2J\\x1b]0;pwned\\x07 down\\x1b[31m!\\x9b6n\\r\\u202eok"
RAW = ("\x1b", "\x07", "\x9b", "\r", "\u202e")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.from_plugins([])


def test_visible_escapes_what_a_terminal_would_obey_and_keeps_lines() -> None:
    assert visible(HOSTILE) == SHOWN
    assert visible("line 1\n\tline 2\x00\x7f") == "line 1\n\tline 2\\x00\\x7f"
    assert visible_line("a\tb\nc") == "a\\tb\\nc"
    assert visible("Диск заполнен 💾 — ok") == "Диск заполнен 💾 — ok"


def test_visible_json_is_the_same_document() -> None:
    data = {"title": HOSTILE, "labels": {"k\x85": "v\u2028"}}
    text = visible_json(json.dumps(data, ensure_ascii=False))
    assert json.loads(text) == data
    assert not any(c in text for c in (*RAW, "\x85", "\u2028"))


def test_the_console_channel_prints_escape_sequences_as_text(host, capsys) -> None:
    config = parse_config({"channels": {"tty": {"kind": "console"}}}, host)
    alert = Alert(title=HOSTILE, body="line one\nline\x1b[1A two", labels={"x\x1b": "y\x07"})
    with Dispatcher(config, host=host) as dispatcher:
        (receipt,) = dispatcher.dispatch(alert)
    out = capsys.readouterr().out
    assert receipt.ok
    assert not any(c in out for c in RAW)
    assert SHOWN in out
    assert "line one\nline\\x1b[1A two" in out  # the body keeps its lines
    assert "x\\x1b=y\\x07" in out


def test_the_send_table_prints_titles_and_errors_with_escapes(tmp_path, capsys) -> None:
    config = tmp_path / "notifier.toml"
    config.write_text('[channels.audit]\nkind = "jsonl"\npath = "a.jsonl"\n')
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text("".join(json.dumps({"title": f"{HOSTILE} #{i}"}) + "\n" for i in range(2)))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(["send", "--file", str(alerts), "--config", str(config)])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out = capsys.readouterr().out
    assert code == 0
    assert "db\\x1b[2J\\x1b]0;pwned" in out
    assert not any(c in out for c in RAW)
