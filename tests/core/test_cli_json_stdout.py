"""Under ``--json`` stdout holds the JSON alone, whatever the channels print."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.cli.main import main

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.toml"


@pytest.fixture
def quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    config = tmp_path / "quickstart.toml"
    shutil.copy(QUICKSTART, config)
    monkeypatch.delenv("NOTIFIER_CONFIG", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield config
    root.handlers[:] = handlers
    root.setLevel(level)


def test_send_json_keeps_stdout_json_and_prints_the_console_channel_on_stderr(
    quickstart: Path, capsys: pytest.CaptureFixture[str]
):
    status = main(["send", "--config", str(quickstart), "--title", "Disk full", "--json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    receipts = json.loads(out)
    assert [r["channel"] for r in receipts] == ["terminal", "audit"]
    assert "[terminal] [FIRING][WARNING] Disk full" in err


def test_without_json_the_console_channel_still_prints_on_stdout(
    quickstart: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["send", "--config", str(quickstart), "--title", "Disk full"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("[terminal] [FIRING][WARNING] Disk full")
    assert "CHANNEL" in out


def test_check_json_is_json(quickstart: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["check", "--config", str(quickstart), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == {
        "terminal": "console",
        "audit": "jsonl",
    }
