"""A failed delivery is said once, and truly: whether anything retries it, on one line,
and through logging only where the application asked for log lines."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from notifier.testing.server import LocalServer

SECRET = "hook-token-1c9a77"


@pytest.fixture
def failing_hook(tmp_path: Path):
    """A config whose one webhook channel answers 503 (retryable) to every send."""
    with LocalServer() as server:
        server.route("POST", f"/hooks/{SECRET}", lambda request: {"id": "m-1"})
        server.fail_next(100, status=503)
        config = tmp_path / "hook.toml"
        url = f"{server.url}/hooks/{SECRET}"
        config.write_text(f'[channels.hook]\nkind = "webhook"\nurl = "{url}"\nmax_attempts = 1\n')
        yield config


def run(*args: str, cwd: Path | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd
    )


def test_without_an_outbox_a_failed_send_is_one_table_row_saying_how_to_get_retries(
    failing_hook: Path,
) -> None:
    sent = run("-m", "notifier", "send", "-c", str(failing_hook), "--title", "disk full")
    assert sent.returncode == 1
    _header, row = sent.stdout.splitlines()
    assert " failed " in row
    assert "not retried: configure [outbox] for retries (docs/outbox.md)" in row
    assert "retried later" not in sent.stdout + sent.stderr
    assert sent.stderr == ""  # not a second time as a WARNING

    loud = run("-m", "notifier", "send", "-v", "-c", str(failing_hook), "--title", "disk full")
    assert "WARNING notifier.deliveries: hook: failed 'disk full'" in loud.stderr  # asked for


def test_the_worker_logs_a_retry_as_queued_and_quiet_leaves_warnings_out(
    failing_hook: Path,
) -> None:
    with failing_hook.open("a") as config:
        config.write('[outbox]\npath = "outbox.db"\nbackoff_initial = 0.001\nbackoff_max = 0.001\n')
    cwd = failing_hook.parent
    sent = run("-m", "notifier", "send", "-c", str(failing_hook), "--title", "disk full", cwd=cwd)
    assert " queued " in sent.stdout and "not retried" not in sent.stdout
    worked = run("-m", "notifier", "worker", "--once", "-c", str(failing_hook), cwd=cwd)
    assert "WARNING notifier.deliveries: hook: queued 'disk full', next attempt in" in (
        worked.stderr
    )
    assert "failed" not in worked.stderr
    quiet = run("-m", "notifier", "worker", "-q", "--once", "-c", str(failing_hook), cwd=cwd)
    assert "WARNING" not in quiet.stderr


def test_the_library_prints_nothing_when_the_application_configured_no_logging(
    failing_hook: Path, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from notifier import Alert, Dispatcher

            with Dispatcher.from_config({str(failing_hook)!r}) as dispatcher:
                (receipt,) = dispatcher.dispatch(Alert(title="disk full"))
            print(receipt.outcome.value)
            """
        )
    )
    done = run(str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "failed\n"
    assert done.stderr == ""  # Python's last-resort handler would print the WARNING
