"""``notifier send`` with bad input: a bad line is skipped by number, the rest is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.cli.send import BATCH


def notifier(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    result = subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env,
        timeout=60,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def audit_config(tmp_path: Path) -> Path:
    config = tmp_path / "audit.toml"
    config.write_text('[channels.audit]\nkind = "jsonl"\npath = "audit.jsonl"\n')
    return config


def _delivered(config: Path) -> list[str]:
    audit = config.parent / "audit.jsonl"
    if not audit.exists():
        return []
    return [json.loads(line)["alert"]["title"] for line in audit.read_text().splitlines()]


def _lines(titles: range, prefix: str) -> bytes:
    return b"".join(json.dumps({"title": f"{prefix} {i}"}).encode() + b"\n" for i in titles)


BAD_LINES = {
    "a number as fingerprint": json.dumps({"title": "bad", "fingerprint": 7}).encode(),
    "a null start time": json.dumps({"title": "bad", "starts_at": None}).encode(),
    "invalid UTF-8": b'{"title": "bad \xff\xfe"}',
    "a lone surrogate": b'{"title": "bad \\ud800"}',
    "a nested label": json.dumps({"title": "bad", "labels": {"a": {"b": 1}}}).encode(),
    "deep nesting": b'{"title": "bad", "labels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "a boolean severity": json.dumps({"title": "bad", "severity": True}).encode(),
    "a NaN start time": b'{"title": "bad", "starts_at": NaN}',
}


@pytest.mark.slow
@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_one_bad_line_is_skipped_by_number_and_every_other_line_is_sent(
    audit_config: Path, bad: bytes
) -> None:
    before, after = BATCH + 50, 20
    alerts = audit_config.parent / "alerts.jsonl"
    alerts.write_bytes(_lines(range(before), "good") + bad + b"\n" + _lines(range(after), "late"))
    result = notifier("send", "-c", str(audit_config), "--file", str(alerts), "--json")
    assert result.returncode == 2, result.stderr
    assert f"skipped {alerts}:{before + 1}: " in result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr
    assert len(_delivered(audit_config)) == before + after
    assert len(json.loads(result.stdout)) == before + after


def test_bad_lines_on_stdin_are_named_by_their_line_number(audit_config: Path) -> None:
    stdin = _lines(range(2), "good") + b"\xc3\x28\n" + _lines(range(1), "late")
    result = notifier("send", "-c", str(audit_config), "--file", "-", stdin=stdin)
    assert result.returncode == 2
    assert "skipped stdin:3: not UTF-8 text" in result.stderr
    assert len(_delivered(audit_config)) == 3


def test_empty_stdin_says_that_no_alert_came(audit_config: Path) -> None:
    result = notifier("send", "-c", str(audit_config), stdin=b"  \n")
    assert result.returncode == 2
    assert "stdin is empty" in result.stderr
    assert "Expecting value" not in result.stderr
    assert _delivered(audit_config) == []


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b'{"title": "x", "fingerprint": 7}', "fingerprint must be text, got int"),
        (b'{"title": "x \xff"}', "not UTF-8 text"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_a_bad_alert_on_stdin_is_a_usage_error_with_a_clear_message(
    audit_config: Path, stdin: bytes, message: str
) -> None:
    result = notifier("send", "-c", str(audit_config), stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_empty_file_sends_nothing_and_says_so(audit_config: Path) -> None:
    alerts = audit_config.parent / "alerts.jsonl"
    alerts.write_bytes(b"\n\n")
    result = notifier("send", "-c", str(audit_config), "--file", str(alerts))
    assert result.returncode == 0
    assert f"no alerts in {alerts}" in result.stderr
