"""``notifier send`` / ``worker`` / ``queue`` with an outbox.

The round trips a user makes (send while a channel is down, then a worker; a worker run
as a service and stopped) run as real subprocesses; the operator views and the error
lines run in-process through ``notifier.cli.main.main``, which is much faster.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import attrs
import pytest
from outbox_support import Receiver, webhook_config

from notifier.cli.main import main
from notifier.testing.server import Response

OUTBOX = 'path = "outbox.db"\nbackoff_initial = 0.001\nbackoff_max = 0.001\npoll_interval = 0.05'


def notifier(*args, config):
    """``notifier ARGS --config CONFIG`` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


@attrs.frozen
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """``cli(*args, config=...)``: the same command in this process."""

    def run(*args, config):
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = main([*args, "--config", str(config)])
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


@pytest.fixture
def hook():
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def config(tmp_path, hook):
    path = tmp_path / "notifier.toml"
    path.write_text(webhook_config({"hook": hook}, OUTBOX))
    return path


def queue_counts(cli, config):
    done = cli("queue", "--json", config=config)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["channels"]


def test_send_queues_what_it_cannot_deliver_and_the_worker_delivers_it(config, hook, cli):
    hook.down = True
    sent = notifier("send", "--title", "disk full", "--json", config=config)
    assert sent.returncode == 1
    [receipt] = json.loads(sent.stdout)
    assert receipt["outcome"] == "queued"
    assert receipt["next_attempt_at"] > 0
    assert queue_counts(cli, config) == {"hook": {"pending": 1}}
    hook.down = False
    worked = notifier("worker", "--once", "--json", config=config)
    assert worked.returncode == 0, worked.stderr
    assert json.loads(worked.stdout) == {
        "outcomes": {"delivered": 1},
        "still_queued": {},
        "dead_letters": 0,
    }
    assert hook.titles == ["disk full"]
    assert queue_counts(cli, config) == {"hook": {"delivered": 1}}


def test_dead_letters_are_listed_with_secrets_masked_then_retried_and_purged(tmp_path, hook, cli):
    secret = "k3y-7f2a9c41"
    hook.server.route(
        "POST", "/refuse", lambda request: Response(400, f"bad key={secret}".encode())
    )
    config = tmp_path / "notifier.toml"
    config.write_text(
        webhook_config({"hook": hook}, OUTBOX).replace(
            hook.url, f"{hook.server.url}/refuse?key={secret}"
        )
    )
    assert cli("send", "--title", "disk full", config=config).returncode == 1
    listed = cli("queue", "--dead", config=config)
    assert listed.returncode == 0
    assert "disk full" in listed.stdout and "400" in listed.stdout
    assert secret not in listed.stdout
    [dead] = json.loads(cli("queue", "--dead", "--json", config=config).stdout)
    assert dead["state"] == "dead" and secret not in json.dumps(dead)

    retried = cli("queue", "--retry", str(dead["id"]), config=config)
    assert retried.stdout.strip() == "1 dead letter(s) queued again"
    assert queue_counts(cli, config) == {"hook": {"pending": 1}}
    worked = cli("worker", "--once", config=config)
    assert worked.returncode == 1  # refused again: a dead letter again
    assert "dead letters: 1" in worked.stdout
    assert cli("queue", "--purge", "--all", config=config).stdout.strip() == (
        "1 dead letter(s) deleted"
    )
    assert queue_counts(cli, config) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["queue", "--retry"], "--retry needs dead-letter IDs (see --dead) or --all"),
        (["queue", "--purge", "3", "--all"], "--purge takes IDs or --all, not both"),
        (["queue", "--all"], "--all goes with --retry or --purge"),
    ],
)
def test_queue_usage_errors_are_one_line_and_exit_2(config, args, message, cli):
    done = cli(*args, config=config)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_worker_and_queue_need_an_outbox_table(tmp_path, hook, cli):
    config = tmp_path / "notifier.toml"
    config.write_text(webhook_config({"hook": hook}, "").split("[outbox]")[0])
    for command in (["worker", "--once"], ["queue"]):
        done = cli(*command, config=config)
        assert done.returncode == 2
        assert "no [outbox] table" in done.stderr


def test_a_corrupt_outbox_file_is_one_clear_line(config, tmp_path, cli):
    (tmp_path / "outbox.db").write_bytes(b"garbage" * 1000)
    done = cli("queue", config=config)
    assert done.returncode == 1
    assert "is corrupt or not a SQLite database" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_worker_runs_until_sigterm(config, hook, cli):
    hook.down = True
    cli("send", "--title", "disk full", config=config)
    hook.down = False
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "notifier", "worker", "--config", str(config)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not hook.titles and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        assert hook.titles == ["disk full"]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
        worker.stderr.close()


# -- saying what happened, once and truly ----------------------------------------------------


def test_a_queued_send_shows_its_next_attempt_and_no_failed_warning(config, hook, cli):
    hook.down = True
    sent = cli("send", "--title", "disk full", config=config)
    assert sent.returncode == 1
    header, row = sent.stdout.splitlines()
    assert "NEXT ATTEMPT" in header
    assert " queued " in row and re.search(r"\d\d:\d\d:\d\d", row)
    assert sent.stderr == ""  # the row says it; no log line repeats it

    worked = cli("worker", "--once", config=config)
    assert "hook: queued 'disk full', next attempt in" in worked.stderr
    assert "failed" not in worked.stderr  # the delivery is queued, not failed


def test_send_delivers_its_own_alerts_and_leaves_other_channels_backlogs_to_the_worker(
    tmp_path, cli
):
    with Receiver() as a, Receiver() as b:
        config = tmp_path / "notifier.toml"
        routes = (
            '[[routes]]\nlabels = { to = "a" }\nchannels = ["a"]\n\n'
            '[[routes]]\nlabels = { to = "b" }\nchannels = ["b"]\n'
        )
        text = webhook_config({"a": a, "b": b}, OUTBOX).replace(
            "\n[outbox]", f"\n{routes}\n[outbox]"
        )
        # a: one delivery an hour, so a second alert waits; b: refused (404), a dead letter
        text = text.replace(
            f'url = "{a.url}"', f'url = "{a.url}"\nrate_limit = {{ count = 1, per = 3600 }}'
        )
        text = text.replace(f'url = "{b.url}"', f'url = "{b.url}-gone"')
        config.write_text(text)
        assert cli("send", "--title", "b's", "--label", "to=b", config=config).returncode == 1
        [dead] = json.loads(cli("queue", "--dead", "--json", config=config).stdout)
        assert cli("queue", "--retry", str(dead["id"]), config=config).returncode == 0
        assert cli("send", "--title", "a's 1", "--label", "to=a", config=config).returncode == 0

        sent = cli("send", "--title", "a's 2", "--label", "to=a", config=config)
        assert sent.returncode == 1 and " queued " in sent.stdout  # behind a's rate limit
        assert a.titles == ["a's 1"]
        # b's retried dead letter is due, but another channel's backlog is the worker's
        assert queue_counts(cli, config)["b"] == {"pending": 1}


@pytest.mark.parametrize("flag", ["--retry", "--purge"])
def test_queue_retry_or_purge_of_an_id_that_is_no_dead_letter_names_it_and_exits_1(
    config, hook, cli, flag
):
    hook.down = True
    cli("send", "--title", "disk full", config=config)  # pending: no dead letter
    pending = 1  # the one delivery written: queued, not dead
    done = cli("queue", flag, "999", str(pending), config=config)
    assert done.returncode == 1
    assert "no dead letter with id 999, 1" in done.stderr
    assert queue_counts(cli, config) == {"hook": {"pending": 1}}
