"""SMTP with :mod:`smtplib`: connecting, one mail transaction, and replies as errors.

Replies follow RFC 5321: 4xx is temporary (a retryable error: greylisting, a full
queue, a busy server), 5xx is permanent. A transaction is run step by step (``MAIL``,
``RCPT`` per recipient, ``DATA``) rather than through ``sendmail`` so a failure knows
whether the message may already have reached the server (``TransportError.sent``) and
so refused recipients can be reported without failing the delivery.

The debug level stays 0: at any other level :mod:`smtplib` prints the whole dialogue to
stderr, the ``AUTH`` exchange and so the password included.
"""

from __future__ import annotations

import smtplib
import ssl
from typing import Literal

import attrs

from notifier import deadline
from notifier.errors import AuthError, NotifierError, ProviderError, TransportError
from notifier.redact import Secret, redact, scrub_exception

Mode = Literal["plain", "starttls", "tls"]
#: Replies to AUTH that mean the credentials (or the way they were sent) are wrong.
AUTH_CODES = frozenset({530, 534, 535, 538})
#: 421: the server is closing the connection; it cannot be used again.
CLOSING = 421


@attrs.frozen
class SmtpSettings:
    """Where and how to connect; built once per channel from its options."""

    host: str
    port: int
    mode: Mode = "plain"
    username: str | None = None
    password: Secret | None = attrs.field(default=None, repr=False)
    timeout: float = 10.0
    verify_tls: bool = True
    ca_file: str | None = None
    channel: str = ""

    @property
    def label(self) -> str:
        """How messages start: ``channel 'mail', send`` like the HTTP layer's."""
        return f"channel {self.channel!r}, send" if self.channel else "email, send"

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return redact(" ".join(text.split()))


def reply_error(settings: SmtpSettings, step: str, code: int, raw: bytes | str) -> NotifierError:
    """The error for an SMTP reply ``code`` to ``step``: 4xx retryable, 5xx permanent."""
    text = _text(raw)
    message = f"{settings.label}: {settings.server} refused {step}: {code} {text}".rstrip()
    error: NotifierError
    if code in (530, 538) and "tls" in text.lower():
        error = ProviderError(
            message + " (the server wants TLS first: set starttls = true, or tls = true)",
            code=code,
            provider_message=text,
        )
    elif code in AUTH_CODES or (step == "AUTH" and code == 454):
        error = AuthError(
            message + " (check username and password)", retryable=code < 500, code=code
        )
    else:
        error = ProviderError(message, code=code, provider_message=text, retryable=code < 500)
    return error


def transport_error(
    settings: SmtpSettings, exc: BaseException, *, sent: bool, step: str
) -> TransportError:
    """A failure below SMTP (refused, reset, timed out, TLS) during ``step``."""
    scrub_exception(exc)
    detail = redact(str(exc)) or type(exc).__name__
    retryable = True
    if isinstance(exc, ssl.SSLCertVerificationError):
        retryable = False  # trying again will not make the certificate trusted
        detail = f"TLS certificate not trusted ({exc.verify_message}); set ca_file"
    elif isinstance(exc, ssl.SSLError):
        retryable = False
        detail = f"TLS failed ({detail}); check tls / starttls against the server's port"
    elif isinstance(exc, TimeoutError):
        left = deadline.remaining()
        if left is not None and left < settings.timeout:
            detail = "no answer before the delivery_timeout"
        else:
            detail = f"no answer within {settings.timeout:g}s"
    return TransportError(
        f"{settings.label}: {step} {settings.server} failed: {detail}",
        sent=sent,
        retryable=retryable,
    )


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """An open, greeted, (STARTTLS-)secured and authenticated connection.

    :raises AuthError: the server refused the credentials.
    :raises ProviderError: the server refused the connection or lacks STARTTLS/AUTH.
    :raises TransportError: with ``sent=False``: unreachable, timed out or TLS failed.
    """
    context = tls_context(settings) if settings.mode != "plain" else None
    conn: smtplib.SMTP | None = None
    step = "connecting to"
    timeout = deadline.cap(settings.timeout)  # each step's wait, within the delivery's
    try:
        if settings.mode == "tls":
            conn = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
        else:
            conn = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        conn.set_debuglevel(0)
        step = "greeting"
        conn.ehlo_or_helo_if_needed()
        if settings.mode == "starttls":
            step = "STARTTLS with"
            conn.starttls(context=context)
            conn.ehlo()
        if settings.username:
            step = "AUTH"
            conn.login(settings.username, settings.password.reveal() if settings.password else "")
        return conn
    except smtplib.SMTPNotSupportedError as exc:
        _close(conn)
        wanted = "STARTTLS" if step.startswith("STARTTLS") else "AUTH"
        hint = "use tls = true for an implicit-TLS port" if wanted == "STARTTLS" else (
            "if it offers AUTH after TLS, set starttls = true (or tls = true); "
            "else remove username and password"
        )  # fmt: skip
        raise ProviderError(
            f"{settings.label}: {settings.server} does not offer {wanted}; {hint}", code=wanted
        ) from scrub_exception(exc)
    except smtplib.SMTPResponseException as exc:
        _close(conn)
        raise reply_error(settings, step, exc.smtp_code, exc.smtp_error) from scrub_exception(exc)
    except smtplib.SMTPServerDisconnected as exc:
        _close(conn)
        raise transport_error(settings, exc, sent=False, step=step) from exc
    except smtplib.SMTPException as exc:  # e.g. no AUTH mechanism in common
        _close(conn)
        raise ProviderError(
            f"{settings.label}: {settings.server} at {step}: {_text(str(exc))}"
        ) from scrub_exception(exc)
    except OSError as exc:
        _close(conn)
        raise transport_error(settings, exc, sent=False, step=step) from exc


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        conn.close()


@attrs.frozen
class Accepted:
    """A transaction the server accepted: its final reply, and who it refused."""

    reply: str
    refused: dict[str, str] = attrs.field(factory=dict)


def transact(
    conn: smtplib.SMTP,
    settings: SmtpSettings,
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    international: bool = False,
) -> Accepted:
    """Send one message on an open connection.

    :raises ProviderError: a step was refused (all recipients refused included).
    :raises TransportError: the connection broke; ``sent`` once DATA was under way.
    """
    if conn.sock is not None:  # a pooled connection: this delivery's time left applies
        conn.sock.settimeout(deadline.cap(settings.timeout))
    options = []
    if conn.has_extn("size"):
        limit = int(conn.esmtp_features.get("size") or 0)
        if 0 < limit < len(data):
            raise ProviderError(
                f"{settings.label}: the message is {len(data)} bytes, over "
                f"{settings.server}'s limit of {limit}",
                code=552,
            )
        options.append(f"SIZE={len(data)}")
    if international:
        if not conn.has_extn("smtputf8"):
            raise ProviderError(
                f"{settings.label}: {settings.server} does not accept non-ASCII addresses "
                "(no SMTPUTF8)",
                code="SMTPUTF8",
            )
        options += ["SMTPUTF8", "BODY=8BITMIME"]
    step = "MAIL FROM to"
    try:
        code, text = conn.mail(sender, options)
        if code != 250:
            raise reply_error(settings, "MAIL FROM", code, text)
        refused: dict[str, str] = {}
        codes: list[int] = []
        step = "RCPT TO to"
        for rcpt in recipients:
            code, text = conn.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = f"{code} {_text(text)}"
                codes.append(code)
        if len(refused) == len(recipients):
            raise _all_refused(settings, refused, codes)
        step = "DATA to"
        code, text = conn.data(data)
        if code != 250:
            raise reply_error(settings, "the message (DATA)", code, text)
        return Accepted(_text(text), refused)
    except smtplib.SMTPResponseException as exc:  # DATA answered without 354
        raise reply_error(settings, "DATA", exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise transport_error(settings, exc, sent=step == "DATA to", step=step) from exc


class RecipientsRefused(ProviderError):
    """The server refused every recipient; ``refused`` maps each address to its reply."""

    refused: dict[str, str]

    def __init__(self, message: str, *, refused: dict[str, str], code: int) -> None:
        listed = "; ".join(f"{addr}: {reason}" for addr, reason in refused.items())
        # Retrying helps only if some refusal was temporary (greylisting answers 450/451).
        super().__init__(
            f"{message}: {listed}", code=code, provider_message=listed, retryable=code < 500
        )
        self.refused = refused


def _all_refused(
    settings: SmtpSettings, refused: dict[str, str], codes: list[int]
) -> RecipientsRefused:
    return RecipientsRefused(
        f"{settings.label}: {settings.server} refused every recipient",
        refused=refused,
        code=min(codes, key=lambda c: (c >= 500, c)),
    )
