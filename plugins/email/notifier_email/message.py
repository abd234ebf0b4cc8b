"""An alert as an email: a multipart/alternative message built with :mod:`email`.

The plain-text part is :func:`notifier.render.render_text`, the HTML part
:func:`notifier.render.render_html` in a minimal document, so the mail reads like every
other channel. Headers make alert mail easy to sort and recognise:

* ``Subject``: the optional prefix, then ``[FIRING][CRITICAL] title`` or
  ``[RESOLVED] title``, on one line and at most :data:`SUBJECT_BYTES` bytes.
* ``Message-ID``: derived from the delivery's idempotency key, so a retried or
  re-sent delivery carries the same id and mail systems and people can spot the repeat.
* ``References``: one id per alert fingerprint, so a client that threads by references
  keeps an alert's firing and resolved mails together.
* ``Auto-Submitted: auto-generated`` (RFC 3834), so vacation responders stay quiet.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid, parseaddr

import attrs

from notifier.models import Alert
from notifier.render import byte_len, fit, headline, render_html, render_text

#: Longest subject, in UTF-8 bytes before encoding (RFC 5322 advises short lines).
SUBJECT_BYTES = 250
#: The alert body is cut to this many bytes; each shown annotation to NOTE_BYTES.
BODY_BYTES = 256 * 1024
NOTE_BYTES = 16 * 1024
#: The plain-text part never exceeds this many bytes (labels are not cut otherwise).
TEXT_PART_BYTES = 512 * 1024

# 7bit transfer encodings: every server accepts them, 8BITMIME or not.
POLICY = SMTP.clone(cte_type="7bit")
_KEY_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HTML_PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    '<body style="font-family:sans-serif">\n{body}\n</body></html>\n'
)


def address_domain(address: str) -> str:
    """The domain of ``address`` (for message ids), or ``notifier.invalid``."""
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2].strip().strip(".")
    return domain if domain and "@" in addr else "notifier.invalid"


def message_id(key: str, domain: str) -> str:
    """A Message-ID for the delivery with idempotency ``key``: the same key gives the
    same id, so repeats are recognisable; no key gives a unique id."""
    if not key:
        return make_msgid("notifier", domain)
    token = key if _KEY_SAFE.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<notifier.{token}@{domain}>"


def thread_id(alert: Alert, domain: str) -> str:
    return f"<alert.{alert.fingerprint}@{domain}>"


def subject(alert: Alert, prefix: str = "") -> str:
    """One line: prefix, status, severity and title, cut to :data:`SUBJECT_BYTES`."""
    line = " ".join(f"{prefix}{headline(alert)}".split())  # no CR/LF: header injection
    return fit(line, SUBJECT_BYTES)[0]


def shortened(alert: Alert) -> Alert:
    """``alert`` with its body and annotations cut to the byte limits above."""
    notes = {k: fit(v, NOTE_BYTES)[0] for k, v in alert.annotations.items()}
    if byte_len(alert.body) <= BODY_BYTES and notes == alert.annotations:
        return alert
    return attrs.evolve(alert, body=fit(alert.body, BODY_BYTES)[0], annotations=notes)


def build_message(
    alert: Alert,
    *,
    sender: str,
    recipients: list[str],
    now: float,
    key: str = "",
    subject_prefix: str = "",
    international: bool = False,
    html_body: str | None = None,
) -> EmailMessage:
    """The complete message, ready for :meth:`EmailMessage.as_bytes`.

    :param now: seconds since the epoch, for the ``Date`` header.
    :param key: the delivery's idempotency key (see :func:`message_id`).
    :param international: an address is not ASCII: build for an SMTPUTF8 server.
    :param html_body: the HTML part's body from a template (autoescaped when rendered);
        the plain-text part keeps the standard layout.
    """
    alert = shortened(alert)
    domain = address_domain(sender)
    msg = EmailMessage(policy=SMTPUTF8 if international else POLICY)
    msg["Subject"] = subject(alert, subject_prefix)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = message_id(key, domain)
    msg["References"] = thread_id(alert, domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Notifier-Fingerprint"] = alert.fingerprint
    msg["X-Notifier-Status"] = alert.status.value
    msg["X-Notifier-Severity"] = alert.severity
    if not alert.resolved and alert.severity in ("critical", "error"):
        msg["Importance"] = "high"
    msg.set_content(fit(render_text(alert), TEXT_PART_BYTES - 1)[0] + "\n")
    page = _HTML_PAGE.format(
        title=html.escape(str(msg["Subject"])),
        body=render_html(alert) if html_body is None else html_body,
    )
    msg.add_alternative(page, subtype="html")
    return msg
