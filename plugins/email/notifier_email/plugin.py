"""The ``email`` channel kind (SMTP) and its hooks.

Options are checked by the schema; the rules that tie options together (``tls`` and
``starttls`` are exclusive, a password needs a username, addresses must parse) are the
kind's :func:`validate`, which the config loader runs with the schema checks.
"""

from __future__ import annotations

import logging
import time
import warnings
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from notifier import templates
from notifier.channelhooks import ChannelHooks
from notifier.clock import Clock
from notifier.errors import ConfigError, ConfigIssue, NotifierError, TransportError
from notifier.http import InsecureTransportWarning
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part
from notifier.models import Alert, DeliveryContext, SendResult
from notifier_email.message import build_message
from notifier_email.pool import ConnectionPool
from notifier_email.smtp import Mode, SmtpSettings, connect, transact

log = logging.getLogger("notifier.email")

KIND = "email"
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}

OPTIONS: tuple[Option, ...] = (
    Option("host", required=True, help="the SMTP server's host name"),
    Option("port", int, minimum=1, help="default 465 with tls, 587 with starttls, else 25"),
    Option("starttls", bool, default=False, help="upgrade the connection with STARTTLS"),
    Option("tls", bool, default=False, help="implicit TLS from the first byte (port 465)"),
    Option("username", help="log in with AUTH as this user"),
    Option("password", secret=True, help="the AUTH password"),
    Option("from", required=True, help="the sender address, e.g. 'Alerts <alerts@example.com>'"),
    Option("to", list, required=True, help="recipient addresses"),
    Option("timeout", float, default=10.0, minimum=0.1, help="seconds per SMTP step"),
    Option("subject_prefix", default="", help="text put before every subject"),
    Option("max_connections", int, default=3, minimum=1, help="SMTP connections open at most"),
    Option("verify_tls", bool, default=True, help="check the server's TLS certificate"),
    Option("ca_file", path=True, help="a PEM file of CA certificates to trust instead"),
)


class EmailChannel:
    """One configured SMTP sender and recipient list, with its connection pool."""

    kind = KIND

    def __init__(
        self,
        settings: SmtpSettings,
        pool: ConnectionPool,
        *,
        sender: str,
        recipients: list[str],
        subject_prefix: str = "",
        clock: Clock,
    ) -> None:
        self.name = settings.channel
        self.settings, self.pool = settings, pool
        self.sender, self.recipients = sender, [parseaddr(value)[1] for value in recipients]
        self.to_header = recipients  # as configured, display names included
        self.subject_prefix, self.clock = subject_prefix, clock
        addresses = [parseaddr(sender)[1], *recipients]
        self.international = not all(a.isascii() for a in addresses)

    def __repr__(self) -> str:
        return f"EmailChannel({self.name!r}, {self.settings.server!r})"

    def message(self, alert: Alert, delivery: DeliveryContext) -> EmailMessage:
        """The message a send delivers (``notifier render`` shows it)."""
        return build_message(
            alert,
            sender=self.sender,
            recipients=self.to_header,
            now=self.clock.time(),
            key=delivery.idempotency_key,
            subject_prefix=self.subject_prefix,
            international=self.international,
            html_body=templates.message(alert, delivery),
        )

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        message = self.message(alert, delivery)
        data = message.as_bytes()
        envelope_from = parseaddr(self.sender)[1]
        started = time.perf_counter()
        attempts = 0
        try:
            while True:
                attempts += 1
                with self.pool.connection() as pooled:
                    try:
                        accepted = transact(
                            pooled.conn, self.settings, envelope_from, self.recipients, data,
                            international=self.international,
                        )  # fmt: skip
                    except TransportError as exc:
                        pooled.broken = True
                        # A reused connection the server had already closed: nothing was
                        # sent, so one fresh connection may try again at once.
                        if pooled.reused and not exc.sent and attempts == 1:
                            continue
                        raise
                    pooled.messages += 1
                break
        except NotifierError as exc:
            raise exc.with_context(attempts=attempts) from exc
        log.debug(
            "%s: %s accepted the message for %d of %d recipient(s) in %.1f ms: %s",
            self.name, self.settings.server, len(self.recipients) - len(accepted.refused),
            len(self.recipients), (time.perf_counter() - started) * 1000, accepted.reply,
        )  # fmt: skip
        details: dict[str, Any] = {"smtp_reply": accepted.reply}
        if accepted.refused:
            details["refused"] = dict(accepted.refused)
        return SendResult(message_id=message["Message-ID"], attempts=attempts, details=details)

    def close(self) -> None:
        self.pool.close()


def _address_issue(value: str) -> str | None:
    addr = parseaddr(value)[1]
    local, _, domain = addr.rpartition("@")
    if not local or not domain or "@" in local or " " in addr:
        return f"an email address like 'alerts@example.com', got {value!r}"
    return None


def validate(spec: ChannelSpec) -> list[ConfigIssue]:
    """The rules that tie options together, as config issues with their key paths
    (run by the config loader, so ``notifier check`` reports them)."""
    opts = spec.options
    found = []
    if opts.get("tls") and opts.get("starttls"):
        found.append(("tls", "tls (implicit TLS) or starttls, not both"))
    if opts.get("port") is not None and not 0 < opts["port"] < 65536:
        found.append(("port", "a TCP port, 1 to 65535"))
    if opts.get("password") and not opts.get("username"):
        found.append(("username", "a username to go with the password"))
    if opts.get("username") and not opts.get("password"):
        found.append(("password", "a password to go with the username"))
    problem = _address_issue(opts.get("from") or "")
    if problem:
        found.append(("from", problem))
    if not opts.get("to"):
        found.append(("to", "at least one recipient address"))
    for index, value in enumerate(opts.get("to") or ()):
        problem = _address_issue(value)
        if problem:
            found.append((f"to[{index}]", problem))
    return [ConfigIssue(spec.source, f"channels.{spec.name}.{k}", v) for k, v in found]


def build(spec: ChannelSpec, context: BuildContext) -> EmailChannel:
    issues = validate(spec)  # again: build may be handed a spec that skipped the loader
    if issues:
        raise ConfigError(issues)
    opts = spec.options
    mode: Mode = "tls" if opts["tls"] else "starttls" if opts["starttls"] else "plain"
    settings = SmtpSettings(
        host=opts["host"],
        port=opts.get("port") or DEFAULT_PORTS[mode],
        mode=mode,
        username=opts.get("username"),
        password=opts.get("password"),
        timeout=opts["timeout"],
        verify_tls=opts["verify_tls"],
        ca_file=opts.get("ca_file"),
        channel=spec.name,
    )
    if mode != "plain" and not settings.verify_tls:
        text = f"TLS certificate verification is off for channel {spec.name!r} ({settings.server})"
        warnings.warn(text, InsecureTransportWarning, stacklevel=2)
        log.warning(text)
    pool = ConnectionPool(
        lambda: connect(settings),
        size=min(opts["max_connections"], context.pool_size),
        wait=opts["timeout"],
        clock=context.clock,
        label=settings.label,
    )
    return EmailChannel(
        settings,
        pool,
        sender=opts["from"],
        recipients=list(opts["to"]),
        subject_prefix=opts["subject_prefix"],
        clock=context.clock,
    )


def preview(channel: EmailChannel, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    mail = channel.message(alert, delivery)
    html = mail.get_body(("html",))
    content = html.get_content() if html is not None else ""
    data = mail.as_bytes()
    return [Part(data.decode("utf-8", "replace"), content, len(data))]


EMAIL = ChannelKind(
    KIND,
    build,
    OPTIONS,
    description="Email over SMTP: plain text and HTML, connections reused across a burst",
    validate=validate,
    # Every SMTP step, the wait for a pooled connection and QUIT keep to the deadline.
    bounded=True,
    template_format="html",
    preview=preview,
)

hooks = ChannelHooks(kinds=(EMAIL,), sends=(EmailChannel,))
notifier_channel_kinds = hooks.notifier_channel_kinds
notifier_send = hooks.notifier_send
