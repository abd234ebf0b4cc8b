"""FakeSMTP behaves like a mail server to a plain smtplib client, and its config helpers
produce working channel configurations."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from notifier_email.testing import FakeSMTP

from notifier.config import load_config
from notifier.plugins import PluginHost


@pytest.fixture
def smtp():
    with FakeSMTP() as server:
        yield server


def client(server) -> smtplib.SMTP:
    conn = smtplib.SMTP(server.host, server.port, timeout=5)
    conn.login(server.username, server.password)
    return conn


def test_a_wrong_password_is_refused_with_535_and_counted(smtp):
    conn = smtplib.SMTP(smtp.host, smtp.port, timeout=5)
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        conn.login("alerts", "wrong")
    conn.close()
    assert caught.value.smtp_code == 535
    assert smtp.logins == 0 and smtp.failed_logins >= 1


def test_scripted_replies_hit_the_named_step_once(smtp):
    conn = client(smtp)
    smtp.fail_next(451, "4.7.1 Greylisted", step="rcpt")
    assert conn.mail("a@example.com")[0] == 250
    assert conn.rcpt("b@example.com") == (451, b"4.7.1 Greylisted")
    assert conn.rcpt("b@example.com")[0] == 250
    conn.quit()


def test_refused_recipients_stay_refused_and_accepted_mail_is_recorded(smtp):
    smtp.refuse("Nobody@Example.com")
    conn = client(smtp)
    refused = conn.sendmail("a@example.com", ["b@example.com", "nobody@example.com"], b"hi\r\n")
    conn.quit()
    assert refused == {"nobody@example.com": (550, b"5.1.1 No such user")}
    [mail] = smtp.messages
    assert (mail.sender, mail.recipients, mail.login) == (
        "a@example.com",
        ("b@example.com",),
        "alerts",
    )


def test_connections_and_noops_are_counted_and_drop_connections_hangs_up(smtp):
    first, second = client(smtp), client(smtp)
    first.noop()
    smtp.drop_connections()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        first.noop()
    second.close()
    assert (smtp.connections, smtp.noops) == (2, 1)


def test_starttls_mode_refuses_auth_until_tls_and_trusts_the_bundled_ca():
    with FakeSMTP(security="starttls") as smtp:
        conn = smtplib.SMTP(smtp.host, smtp.port, timeout=5)
        conn.ehlo()
        assert not conn.has_extn("auth")
        conn.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
        conn.ehlo()
        conn.login(smtp.username, smtp.password)
        conn.quit()
    assert smtp.logins == 1


def test_channel_toml_is_a_valid_email_channel_table(tmp_path):
    from notifier_email import plugin

    with FakeSMTP(security="tls") as smtp:
        path = tmp_path / "notifier.toml"
        path.write_text(smtp.channel_toml("mail", to=["运维@example.com"]), encoding="utf-8")
        config = load_config(path, PluginHost.from_plugins([plugin]))
    options = config.channels["mail"].options
    assert options["tls"] is True and options["to"] == ["运维@example.com"]
    assert options["password"].reveal() == smtp.password
