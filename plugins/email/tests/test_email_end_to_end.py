"""Email end to end: a TOML file, the dispatcher and the CLI, against a real SMTP server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from notifier_email import plugin
from notifier_email.testing import FakeSMTP

from notifier.clock import FakeClock
from notifier.dispatcher import Dispatcher
from notifier.errors import ConfigError
from notifier.models import Alert, Outcome
from notifier.plugins import PluginHost

CONFIG = """
[dispatcher]
workers = 4

[channels.mail]
kind = "email"
host = "127.0.0.1"
port = {port}
starttls = true
ca_file = "{ca_file}"
username = "alerts"
password = {{ env = "SMTP_PASSWORD" }}
from = "Alerts <alerts@example.com>"
to = ["oncall@example.com", "dba@example.com"]
subject_prefix = "[prod] "

[[routes]]
channels = ["mail"]
"""


@pytest.fixture
def smtp():
    with FakeSMTP(security="starttls") as server:
        yield server


@pytest.fixture
def env(smtp):
    return {"SMTP_PASSWORD": smtp.password}


@pytest.fixture
def config(tmp_path, smtp):
    path = tmp_path / "notifier.toml"
    path.write_text(CONFIG.format(port=smtp.port, ca_file=smtp.ca_file), encoding="utf-8")
    return path


@pytest.fixture
def host():
    return PluginHost.from_plugins([plugin])


@pytest.fixture
def clock():
    return FakeClock()


def test_a_burst_of_alerts_is_mailed_over_few_connections_with_one_login_each(
    config, env, host, clock, smtp
):
    alerts = [Alert(title=f"disk {i}", severity="error") for i in range(12)]
    with Dispatcher.from_config(config, env=env, host=host, clock=clock) as dispatcher:
        receipts = dispatcher.dispatch_many(alerts)
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 12
    assert len(smtp.messages) == 12
    assert smtp.connections <= 3  # max_connections' default, whatever the worker count
    assert smtp.logins == smtp.connections
    mail = smtp.messages[0]
    assert mail.recipients == ("oncall@example.com", "dba@example.com")
    assert mail.subject.startswith("[prod] [FIRING][ERROR] disk ")
    assert {r.message_id for r in receipts} == {m.message["Message-ID"] for m in smtp.messages}


def test_a_refused_recipient_is_reported_on_the_delivered_receipt(config, env, host, clock, smtp):
    smtp.refuse("dba@example.com")
    with Dispatcher.from_config(config, env=env, host=host, clock=clock) as dispatcher:
        [receipt] = dispatcher.dispatch(Alert(title="disk"))
    assert receipt.outcome is Outcome.DELIVERED
    assert receipt.details["refused"] == {"dba@example.com": "550 5.1.1 No such user"}


def test_temporary_and_permanent_replies_become_receipts_the_outbox_can_act_on(
    config, env, host, clock, smtp, caplog
):
    caplog.set_level(logging.DEBUG)
    with Dispatcher.from_config(config, env=env, host=host, clock=clock) as dispatcher:
        smtp.fail_next(452, "4.3.1 Insufficient system storage")
        [temporary] = dispatcher.dispatch(Alert(title="one"))
        smtp.fail_next(554, "5.7.1 Rejected by policy", step="mail")
        [permanent] = dispatcher.dispatch(Alert(title="two"))
    assert temporary.details == {"code": 452, "retryable": True}
    assert permanent.details == {"code": 554, "retryable": False}
    assert permanent.error.startswith("channel 'mail', send: 127.0.0.1:")
    assert "554 5.7.1 Rejected by policy" in permanent.error
    assert smtp.password not in caplog.text + json.dumps(permanent.to_dict())


def test_tls_and_starttls_together_stop_the_dispatcher_with_the_key_path(
    tmp_path, smtp, env, host, clock
):
    path = tmp_path / "both.toml"
    text = CONFIG.format(port=smtp.port, ca_file=smtp.ca_file)
    path.write_text(text.replace("starttls = true", "starttls = true\ntls = true"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        Dispatcher.from_config(path, env=env, host=host, clock=clock)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}: channels.mail.tls: tls (implicit TLS) or starttls, not both"
    ]


def run_cli(*args, env):
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_mails_an_alert_and_never_shows_the_password(config, env, smtp):
    sent = run_cli(
        "send", "-vv", "--config", str(config), "--title", "数据库主从延迟", "--severity",
        "critical", "--body", "lag 120s 🔥", "--json", env=env,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    [receipt] = json.loads(sent.stdout)
    assert receipt["outcome"] == "delivered"
    [mail] = smtp.messages
    assert receipt["message_id"] == mail.message["Message-ID"]
    assert mail.subject == "[prod] [FIRING][CRITICAL] 数据库主从延迟"
    assert "lag 120s 🔥" in mail.part("plain")
    assert smtp.password not in sent.stdout + sent.stderr

    wrong = run_cli("send", "-c", str(config), "--title", "x", env={"SMTP_PASSWORD": "nope-1234"})
    assert wrong.returncode == 1
    assert "535" in wrong.stdout + wrong.stderr
    assert "nope-1234" not in wrong.stdout + wrong.stderr


def test_the_cli_check_reports_a_bad_recipient_address(tmp_path, smtp, env):
    path = tmp_path / "bad.toml"
    text = CONFIG.format(port=smtp.port, ca_file=smtp.ca_file)
    path.write_text(text.replace('"dba@example.com"', '"dba"'), encoding="utf-8")
    checked = run_cli("check", "--config", str(path), env=env)
    assert checked.returncode == 2
    assert "channels.mail.to[1]: an email address like 'alerts@example.com', got 'dba'" in (
        checked.stderr
    )
