"""``notifier queue --dead`` shows hostile alert text as escapes, in its table and JSON."""

from __future__ import annotations

import json
import logging

from outbox_support import Receiver, webhook_config

from notifier.cli.main import main
from notifier.testing.server import Response

TITLE = "disk\x1b[2J\x1b]0;owned\x07 full\x9b6n\r\u202e"
RAW = ("\x1b", "\x07", "\x9b", "\r", "\u202e")


def _run(capsys, *args: str) -> tuple[int, str]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(list(args))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return code, capsys.readouterr().out


def test_dead_letters_list_control_characters_as_escapes(tmp_path, capsys) -> None:
    with Receiver() as hook:
        refusal = f"refused \x1b[31m{TITLE}".encode()
        hook.server.route("POST", "/refuse", lambda request: Response(400, refusal))
        config = tmp_path / "notifier.toml"
        text = webhook_config({"hook": hook}, 'path = "outbox.db"')
        config.write_text(text.replace(hook.url, f"{hook.server.url}/refuse"))
        code, _ = _run(capsys, "send", "--title", TITLE, "--config", str(config))
        assert code == 1

    code, listed = _run(capsys, "queue", "--dead", "--config", str(config))
    assert code == 0
    assert "disk\\x1b[2J\\x1b]0;owned" in listed
    assert not any(c in listed for c in RAW), listed

    code, as_json = _run(capsys, "queue", "--dead", "--json", "--config", str(config))
    assert code == 0
    assert not any(c in as_json for c in RAW)
    [dead] = json.loads(as_json)
    assert dead["title"].startswith("disk\x1b[2J")  # the data itself is unchanged
