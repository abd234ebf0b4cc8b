"""The ``email`` channel delivers through a real SMTP server and maps every reply."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time

import pytest
from notifier_email import plugin
from notifier_email.smtp import RecipientsRefused
from notifier_email.testing import FakeSMTP

from notifier import deadline
from notifier.clock import FakeClock
from notifier.config import parse_channel
from notifier.errors import AuthError, ConfigError, ProviderError, TransportError
from notifier.http import InsecureTransportWarning
from notifier.kinds import BuildContext
from notifier.models import Alert, DeliveryContext
from notifier.plugins import PluginHost

ALERT = Alert(title="Disk full", body="/var at 99%", severity="error")


@pytest.fixture(scope="module")
def host():
    return PluginHost.from_plugins([plugin])


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def smtp():
    with FakeSMTP() as server:
        yield server


def build(host, clock, table, pool_size=8):
    table = {k: v for k, v in table.items() if v is not None}  # None: leave the option out
    spec = parse_channel("mail", table, host)
    return host.build_channel(spec, BuildContext(clock=clock, pool_size=pool_size))


@pytest.fixture
def channel(host, clock, smtp):
    ch = build(host, clock, smtp.channel_options(to=["ops@example.com", "Jane <jane@example.com>"]))
    yield ch
    ch.close()


def send(host, channel, alert=ALERT, key="key-1"):
    return host.send(channel, alert, DeliveryContext(idempotency_key=key))


@pytest.mark.parametrize("security", ["plain", "starttls", "tls"])
def test_an_alert_is_delivered_after_auth_over_each_kind_of_connection(host, clock, security):
    with FakeSMTP(security=security) as smtp:
        channel = build(host, clock, smtp.channel_options())
        try:
            result = send(host, channel)
        finally:
            channel.close()
    [mail] = smtp.messages
    assert (mail.sender, mail.recipients, mail.login) == (
        "alerts@example.com",
        ("ops@example.com",),
        "alerts",
    )
    assert mail.subject == "[FIRING][ERROR] Disk full"
    assert "/var at 99%" in mail.part("plain") and "/var at 99%" in mail.part("html")
    assert result.message_id == "<notifier.key-1@example.com>"
    assert result.details["smtp_reply"].startswith("2.0.0 Ok: queued as ")
    assert smtp.logins == 1


def test_a_burst_reuses_one_connection_and_one_login(host, channel, smtp):
    for index in range(20):
        send(host, channel, key=f"k{index}")
    assert len(smtp.messages) == 20
    assert (smtp.connections, smtp.logins, channel.pool.opened) == (1, 1, 1)
    assert {m.connection for m in smtp.messages} == {1}


def test_concurrent_sends_share_at_most_max_connections(host, clock, smtp):
    channel = build(host, clock, smtp.channel_options(max_connections=2))
    errors = []

    def worker(n):
        try:
            for i in range(6):
                send(host, channel, key=f"{n}-{i}")
        except Exception as exc:  # surfaced below with its message
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    channel.close()
    assert errors == []
    assert len(smtp.messages) == 36
    assert 1 <= smtp.connections <= 2


def test_a_temporary_reply_is_retryable_with_its_code_and_the_connection_is_kept(
    host, channel, smtp
):
    smtp.fail_next(451, "4.3.0 Mail server temporarily rejected message")
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    error = caught.value
    assert error.retryable
    assert error.code == 451
    assert str(error).startswith(
        f"channel 'mail', send: 127.0.0.1:{smtp.port} refused the message (DATA): 451 4.3.0"
    )
    send(host, channel)  # after RSET the same connection carries the next mail
    assert smtp.connections == 1


@pytest.mark.parametrize("step", ["mail", "data"])
def test_a_permanent_reply_is_not_retryable(host, channel, smtp, step):
    smtp.fail_next(554, "5.7.1 Message rejected as spam", step=step)
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    assert not caught.value.retryable
    assert caught.value.code == 554
    assert "5.7.1 Message rejected as spam" in str(caught.value)


def test_a_partly_refused_recipient_list_is_delivered_and_reported(host, channel, smtp):
    smtp.refuse("jane@example.com")
    result = send(host, channel)
    assert result.details["refused"] == {"jane@example.com": "550 5.1.1 No such user"}
    assert smtp.messages[0].recipients == ("ops@example.com",)


def test_every_recipient_refused_permanently_is_a_permanent_error(host, channel, smtp):
    smtp.refuse("ops@example.com")
    smtp.refuse("jane@example.com", 553, "5.1.3 Bad address")
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    assert not caught.value.retryable
    assert caught.value.code == 550
    assert "refused every recipient" in str(caught.value)
    assert smtp.messages == []


def test_every_recipient_refused_says_which_reply_each_address_got(host, channel, smtp):
    smtp.refuse("ops@example.com")
    smtp.refuse("jane@example.com", 553, "5.1.3 Bad address")
    with pytest.raises(RecipientsRefused) as caught:
        send(host, channel)
    assert caught.value.refused == {
        "ops@example.com": "550 5.1.1 No such user",
        "jane@example.com": "553 5.1.3 Bad address",
    }


def test_every_recipient_refused_with_a_temporary_reply_is_retryable(host, channel, smtp):
    smtp.fail_next(451, "4.7.1 Greylisted, try again", step="rcpt", count=2)
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    assert caught.value.retryable
    assert caught.value.code == 451


def test_a_wrong_password_is_a_permanent_auth_error_that_never_shows_the_password(
    host, clock, smtp
):
    channel = build(host, clock, smtp.channel_options(password="wrong-password-123"))
    with pytest.raises(AuthError) as caught:
        send(host, channel)
    assert not caught.value.retryable
    assert caught.value.code == 535
    assert "wrong-password-123" not in str(caught.value)
    assert smtp.failed_logins >= 1  # smtplib tries each mechanism both sides offer


def test_the_password_never_reaches_logs_stderr_errors_or_reprs(host, clock, smtp, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    channel = build(host, clock, smtp.channel_options())
    send(host, channel)
    smtp.fail_next(550, "5.0.0 no")
    with pytest.raises(ProviderError) as caught:
        send(host, channel)
    channel.close()
    client_logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")
    )
    plain_auth = base64.b64encode(f"\0alerts\0{smtp.password}".encode()).decode()
    seen = [client_logs, capfd.readouterr().err, str(caught.value), repr(channel)]
    seen.append(repr(channel.settings))
    for text in seen:
        assert smtp.password not in text
        assert plain_auth not in text
        assert "AUTH" not in text


def test_a_closed_port_is_a_transport_error_before_sending(host, clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    table = {
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "from": "a@x.org",
        "to": ["b@x.org"],
    }
    channel = build(host, clock, table)
    with pytest.raises(TransportError) as caught:
        send(host, channel)
    assert caught.value.sent is False
    assert caught.value.retryable
    assert f"connecting to 127.0.0.1:{port} failed" in str(caught.value)


def test_a_connection_the_server_dropped_is_replaced_without_failing_the_delivery(
    host, channel, smtp
):
    send(host, channel)
    smtp.drop_connections()
    result = send(host, channel, key="k2")
    assert result.attempts == 2  # MAIL on the dead connection, then on a fresh one
    assert smtp.connections == 2
    assert len(smtp.messages) == 2


def test_an_idle_connection_is_checked_with_noop_and_replaced_when_dead(host, channel, smtp, clock):
    send(host, channel)
    clock.advance(10)  # idle longer than NOOP_AFTER
    send(host, channel, key="k2")
    assert (smtp.noops, smtp.connections) == (1, 1)
    smtp.drop_connections()
    clock.advance(10)
    result = send(host, channel, key="k3")
    assert result.attempts == 1  # NOOP found it dead before any mail was attempted
    assert smtp.connections == 2


def test_a_connection_idle_past_the_server_timeout_is_replaced_unasked(host, channel, smtp, clock):
    send(host, channel)
    clock.advance(600)
    send(host, channel, key="k2")
    assert (smtp.noops, smtp.connections) == (0, 2)


def test_close_quits_idle_connections_and_later_sends_fail_cleanly(host, channel, smtp):
    send(host, channel)
    assert channel.pool.idle == 1
    channel.close()
    assert channel.pool.idle == 0
    with pytest.raises(TransportError, match="closed"):
        send(host, channel)


def test_an_untrusted_certificate_is_a_permanent_transport_error(host, clock):
    with FakeSMTP(security="tls") as smtp:
        channel = build(host, clock, smtp.channel_options(ca_file=None))
        with pytest.raises(TransportError) as caught:
            send(host, channel)
    assert not caught.value.retryable
    assert "certificate not trusted" in str(caught.value)


def test_turning_tls_verification_off_warns_and_then_trusts_any_certificate(host, clock):
    with FakeSMTP(security="tls") as smtp:
        with pytest.warns(InsecureTransportWarning, match="channel 'mail'"):
            channel = build(host, clock, smtp.channel_options(ca_file=None, verify_tls=False))
        send(host, channel)
        channel.close()
    assert len(smtp.messages) == 1


def test_starttls_against_a_server_without_it_says_so(host, clock, smtp):
    channel = build(host, clock, smtp.channel_options(starttls=True))
    with pytest.raises(ProviderError, match="does not offer STARTTLS"):
        send(host, channel)


def test_auth_before_starttls_on_a_submission_server_says_to_turn_starttls_on(host, clock):
    with FakeSMTP(security="starttls") as smtp:
        channel = build(host, clock, smtp.channel_options(starttls=False))
        with pytest.raises(ProviderError, match="set starttls = true") as caught:
            send(host, channel)
    assert not caught.value.retryable


def test_a_message_over_the_servers_size_limit_is_refused_before_sending(host, clock):
    with FakeSMTP(size_limit=2000) as smtp:
        channel = build(host, clock, smtp.channel_options())
        with pytest.raises(ProviderError, match=r"over 127\.0\.0\.1:\d+'s limit of 2000") as caught:
            send(host, channel, Alert(title="big", body="x" * 5000))
    assert caught.value.code == 552
    assert not caught.value.retryable


def test_non_ascii_addresses_go_out_with_smtputf8(host, channel, smtp, clock):
    intl = build(host, clock, smtp.channel_options(to=["运维@例子.中国"]))
    send(host, intl)
    intl.close()
    assert smtp.messages[0].recipients == ("运维@例子.中国",)


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"tls": True, "starttls": True}, "tls", "not both"),
        ({"username": None, "password": "p"}, "username", "a username"),
        ({"password": None}, "password", "a password"),
        ({"to": ["ok@example.com", "nobody"]}, "to[1]", "an email address"),
        ({"to": []}, "to", "at least one recipient"),
        ({"from": "me"}, "from", "an email address"),
        ({"port": 70000}, "port", "1 to 65535"),
    ],
)
def test_bad_option_combinations_are_config_errors_naming_the_option(
    host, clock, smtp, changes, path, expected
):
    with pytest.raises(ConfigError) as caught:
        build(host, clock, smtp.channel_options(**changes))
    assert caught.value.issues[0].path == f"channels.mail.{path}"
    assert expected in caught.value.issues[0].expected


def test_a_missing_host_is_reported_by_the_schema(host):
    with pytest.raises(ConfigError, match=r"channels\.mail\.host: required"):
        parse_channel("mail", {"kind": "email", "from": "a@b.c", "to": ["d@e.f"]}, host)


def test_a_reused_connection_to_a_server_that_stops_answering_ends_by_the_deadline(
    host, channel, smtp
):
    send(host, channel, key="warm")  # the connection the next send reuses
    smtp.stall_next(60, step="data")
    started = time.monotonic()
    with deadline.within(0.3), pytest.raises(TransportError) as caught:
        send(host, channel, key="stalled")
    # The channel's own timeout is 10 s per step; the deadline cut the wait.
    assert time.monotonic() - started < 3
    assert caught.value.retryable and caught.value.sent
    assert "timed out" in str(caught.value)


def test_waiting_for_a_busy_pool_ends_by_the_deadline(host, clock, smtp):
    ch = build(host, clock, smtp.channel_options(to=["ops@example.com"]), pool_size=1)
    smtp.stall_next(60, step="mail")

    def hold_the_connection() -> None:
        with pytest.raises(TransportError):  # the server stops under it, below
            send(host, ch, key="blocker")

    blocker = threading.Thread(target=hold_the_connection)
    blocker.start()
    try:
        while smtp.connections == 0:  # the blocker holds the pool's only connection
            threading.Event().wait(0.01)
        with deadline.within(0.2), pytest.raises(TransportError) as caught:
            send(host, ch, key="waiting")
        assert "SMTP connections stayed busy" in str(caught.value)
        assert caught.value.sent is False
    finally:
        smtp.stop()  # ends the stall, so the blocker returns
        blocker.join(10)
        ch.close()
