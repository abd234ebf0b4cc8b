"""The ``notifier`` command in a real subprocess, as users and scripts run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dists import install_example_plugin

from notifier.testing.server import LocalServer

ROOT = Path(__file__).parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.toml"
SECRET = "hook-token-5f1e9c"


def notifier(*args: str, stdin: str | None = None, env: dict | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    config = tmp_path / "quickstart.toml"
    shutil.copy(QUICKSTART, config)
    return config


@pytest.fixture
def hook_server():
    with LocalServer() as server:
        server.route("POST", f"/hooks/{SECRET}", lambda request: {"id": "m-1"})
        yield server


def _hook_config(tmp_path: Path, server: LocalServer, **extra: str) -> Path:
    config = tmp_path / "hook.toml"
    options = "".join(f"{k} = {v}\n" for k, v in extra.items())
    config.write_text(
        f"""
[channels.hook]
kind = "webhook"
url = {{ env = "HOOK_URL" }}
max_attempts = 1
{options}
[channels.audit]
kind = "jsonl"
path = "audit.jsonl"
"""
    )
    return config


def test_the_quick_start_example_sends_through_two_channels(quickstart: Path) -> None:
    result = notifier(
        "send",
        "--config",
        str(quickstart),
        "--title",
        "Disk almost full",
        "--severity",
        "critical",
        "--label",
        "team=db",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    receipts = json.loads(_json_tail(result.stdout))
    assert [(r["channel"], r["outcome"]) for r in receipts] == [
        ("terminal", "delivered"),
        ("audit", "delivered"),
    ]
    for receipt in receipts:
        assert {"channel", "outcome", "attempts", "latency_ms", "message_id", "error"} <= set(
            receipt
        )
    line = json.loads((quickstart.parent / "quickstart-alerts.jsonl").read_text())
    assert line["alert"]["title"] == "Disk almost full" and line["mentions"] == ["@all"]


def _json_tail(stdout: str) -> str:
    # The console channel prints the alert to stdout before the JSON receipts.
    return stdout[stdout.rindex("\n[\n") + 1 :] if "\n[\n" in stdout else stdout


def test_the_receipt_table_and_exit_status_zero(quickstart: Path) -> None:
    result = notifier("send", "-c", str(quickstart), "--title", "hello")
    assert result.returncode == 0
    assert "CHANNEL" in result.stdout and "delivered" in result.stdout
    assert "[FIRING][WARNING] hello" in result.stdout


def test_one_alert_as_json_on_stdin(quickstart: Path) -> None:
    alert = {"title": "from stdin", "severity": "info", "labels": {"a": "b"}}
    result = notifier("send", "-c", str(quickstart), "--json", stdin=json.dumps(alert))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(_json_tail(result.stdout))) == 2


def test_a_jsonl_file_with_a_bad_line_sends_the_rest_and_exits_2(quickstart: Path) -> None:
    alerts = quickstart.parent / "alerts.jsonl"
    alerts.write_text(
        json.dumps({"title": "one"})
        + "\n{not json\n"
        + json.dumps({"title": "two"})
        + "\n"
        + json.dumps({"title": "three", "severity": "fatal"})
        + "\n"
    )
    result = notifier("send", "-c", str(quickstart), "--file", str(alerts), "--json")
    assert result.returncode == 2
    assert f"{alerts}:2:" in result.stderr and f"{alerts}:4:" in result.stderr
    receipts = json.loads(_json_tail(result.stdout))
    assert len(receipts) == 4 and all(r["outcome"] == "delivered" for r in receipts)


def test_a_failed_delivery_exits_1_and_leaks_no_secret_even_at_debug(
    tmp_path: Path, hook_server: LocalServer
) -> None:
    config = _hook_config(tmp_path, hook_server)
    hook_server.fail_next(1, status=500)
    url = f"{hook_server.url}/hooks/{SECRET}?sig={SECRET}"
    result = notifier(
        "-vv", "send", "-c", str(config), "--title", "x", "--json", env={"HOOK_URL": url}
    )
    assert result.returncode == 1
    receipts = {r["channel"]: r for r in json.loads(result.stdout)}
    assert receipts["hook"]["outcome"] == "failed" and "500" in receipts["hook"]["error"]
    assert receipts["audit"]["outcome"] == "delivered"
    assert "DEBUG" in result.stderr and "urllib3" in result.stderr  # every logger at DEBUG
    assert SECRET not in result.stdout + result.stderr
    ok = notifier("send", "-c", str(config), "--title", "y", env={"HOOK_URL": url})
    assert ok.returncode == 0 and "m-1" in ok.stdout
    assert hook_server.requests[-1].header("idempotency-key")


def test_config_errors_exit_2_with_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[channels.a]\nkind = "jsonl"\n\n[[routes]]\nchannels = ["b"]\n')
    result = notifier("send", "-c", str(config), "--title", "x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{config}: channels.a.path: required" in result.stderr
    assert f"{config}: routes[0].channels[0]:" in result.stderr
    missing = notifier("check", "-c", str(tmp_path / "nope.toml"))
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        f"notifier: error: {tmp_path / 'nope.toml'}: file not found",
    )


def test_config_comes_from_the_environment_variable(quickstart: Path) -> None:
    result = notifier("check", env={"NOTIFIER_CONFIG": str(quickstart)})
    assert result.returncode == 0 and "OK, 2 channel(s), 2 route(s)" in result.stdout


def test_usage_errors_exit_2(quickstart: Path) -> None:
    bad_label = notifier("send", "-c", str(quickstart), "--title", "x", "--label", "novalue")
    assert bad_label.returncode == 2 and "--label expects KEY=VALUE" in bad_label.stderr
    assert notifier("send", "--severity", "fatal").returncode == 2
    assert notifier().returncode == 2


def test_groups_on_a_kind_that_cannot_create_them(quickstart: Path) -> None:
    result = notifier(
        "group",
        "create",
        "-c",
        str(quickstart),
        "--channel",
        "audit",
        "--name",
        "ops",
        "--owner",
        "u1",
        "--member",
        "u1",
        "--member",
        "u2",
    )
    assert result.returncode == 2
    assert "kind 'jsonl', which cannot manage group chats" in result.stderr


def test_channels_lists_kinds_with_their_distribution_including_third_party(
    site: Path,
) -> None:
    install_example_plugin(site)
    result = notifier("channels", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    kinds = {k["kind"]: k["distribution"] for k in json.loads(result.stdout)["kinds"]}
    assert kinds["memo"] == "notifier-memo" and kinds["jsonl"] == "notifier-core"
    assert kinds["wework"] == "notifier-wework"


def test_version_and_python_dash_m_are_the_same_cli() -> None:
    result = notifier("--version")
    assert result.returncode == 0 and result.stdout.startswith("notifier ")
    script = shutil.which("notifier")
    if script:
        same = subprocess.run([script, "--version"], capture_output=True, text=True)
        assert same.stdout == result.stdout


def test_verbose_logs_each_delivery_at_info(quickstart: Path) -> None:
    quiet = notifier("send", "-c", str(quickstart), "--title", "calm")
    assert " INFO " not in quiet.stderr
    loud = notifier("send", "-v", "-c", str(quickstart), "--title", "loud")
    assert "INFO notifier.deliveries: audit: delivered 'loud'" in loud.stderr
    assert " DEBUG " not in loud.stderr


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    import io

    from notifier.cli.output import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    for out in (tty, pipe):
        progress = Progress(4, out=out)
        progress.advance(2)
        progress.advance(2)
        progress.finish()
    assert pipe.getvalue() == ""
    assert "\r[" + "#" * 15 + "." * 15 + "] 2/4 alerts" in tty.getvalue()
    assert tty.getvalue().endswith("] 4/4 alerts\n")
