"""An alert becomes a well-formed multipart email with headers that make repeats and
threads recognisable."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default

from notifier_email.message import (
    BODY_BYTES,
    SUBJECT_BYTES,
    address_domain,
    build_message,
    message_id,
)

from notifier.models import Alert, Status
from notifier.render import byte_len

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = 1_772_366_400.0  # 2026-03-01 12:00:00 UTC


def alert(**changes) -> Alert:
    fields = {
        "title": "Disk full on db-1",
        "body": "/var is at 99% <script>",
        "severity": "critical",
        "labels": {"host": "db-1"},
        "annotations": {"runbook_url": "https://runbooks/disk"},
        "starts_at": START,
    }
    return Alert(**{**fields, **changes})


def build(a: Alert | None = None, **kwargs):
    options = {
        "sender": "Alerts <alerts@example.com>",
        "recipients": ["ops@example.com", "Jane <jane@example.com>"],
        "now": NOW,
        "key": "k1",
    }
    return build_message(a or alert(), **{**options, **kwargs})


def reparsed(message):
    return message_from_bytes(message.as_bytes(), policy=default)


def test_the_message_is_multipart_alternative_with_the_shared_text_and_html():
    message = reparsed(build())
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content()
    assert text.startswith("[FIRING][CRITICAL] Disk full on db-1\n/var is at 99% <script>")
    assert "Runbook: https://runbooks/disk" in text
    assert '<h2 style="color:#D93025">[FIRING][CRITICAL] Disk full on db-1</h2>' in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert html.startswith("<!DOCTYPE html>")


def test_headers_carry_sender_recipients_date_and_alert_facts():
    message = reparsed(build())
    assert message["From"] == "Alerts <alerts@example.com>"
    assert message["To"] == "ops@example.com, Jane <jane@example.com>"
    assert message["Date"] == "Sun, 01 Mar 2026 12:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Notifier-Status"] == "firing"
    assert message["X-Notifier-Severity"] == "critical"
    assert message["Importance"] == "high"


def test_the_subject_has_the_prefix_status_and_severity_and_resolved_reads_differently():
    assert (
        build(subject_prefix="[prod] ")["Subject"] == "[prod] [FIRING][CRITICAL] Disk full on db-1"
    )
    done = alert(status=Status.RESOLVED, ends_at=START + timedelta(minutes=3))
    message = build(done)
    assert message["Subject"] == "[RESOLVED] Disk full on db-1"
    assert message["Importance"] is None
    html = reparsed(message).get_body(("html",)).get_content()
    assert 'style="color:#188038"' in html  # the "ok" green
    assert "(after 3m0s)" in html


def test_a_title_with_line_breaks_cannot_inject_headers():
    message = reparsed(build(alert(title="boom\r\nBcc: evil@example.com")))
    assert message["Bcc"] is None
    assert message["Subject"] == "[FIRING][CRITICAL] boom Bcc: evil@example.com"


def test_a_long_non_ascii_subject_is_cut_to_its_byte_limit_and_encoded():
    message = build(alert(title="磁盘满了" * 100))
    subject = str(message["Subject"])
    assert byte_len(subject) <= SUBJECT_BYTES
    assert subject.endswith("…[truncated]")
    raw = message.as_bytes()
    assert raw.isascii()  # RFC 2047 encoded words, 7bit parts
    assert reparsed(message)["Subject"] == subject


def test_the_message_id_follows_the_delivery_key_so_repeats_are_recognisable():
    first, again, other = build(key="k1"), build(key="k1"), build(key="k2")
    assert first["Message-ID"] == again["Message-ID"] == "<notifier.k1@example.com>"
    assert other["Message-ID"] != first["Message-ID"]
    assert build(key="")["Message-ID"] != build(key="")["Message-ID"]
    odd = message_id("a key with spaces/and@signs", "example.com")
    assert odd == message_id("a key with spaces/and@signs", "example.com")
    assert " " not in odd and odd.count("@") == 1


def test_firing_and_resolved_mail_of_one_alert_share_a_thread_reference():
    firing = build(alert())
    done = build(alert(status=Status.RESOLVED, ends_at=START + timedelta(minutes=1)), key="k2")
    assert firing["References"] == done["References"]
    assert firing["References"] == f"<alert.{alert().fingerprint}@example.com>"


def test_the_sender_domain_names_the_message_id_and_a_bare_sender_still_works():
    assert address_domain("Alerts <alerts@ops.example.com>") == "ops.example.com"
    assert address_domain("not an address") == "notifier.invalid"


def test_a_huge_body_is_cut_so_the_message_stays_bounded():
    message = build(alert(body="x" * (BODY_BYTES * 4)))
    assert len(message.as_bytes()) < BODY_BYTES * 3  # two parts, base64/qp overhead
    assert "…[truncated]" in reparsed(message).get_body(("plain",)).get_content()


def test_an_international_message_keeps_non_ascii_addresses_readable():
    message = build(
        sender="告警 <告警@例子.中国>", recipients=["运维@例子.中国"], international=True
    )
    raw = message.as_bytes()
    assert "运维@例子.中国".encode() in raw
    assert message["Message-ID"].endswith("@例子.中国>")


def test_only_http_https_and_mailto_links_are_clickable_in_the_html_part():
    links = [
        {"url": "javascript:alert(document.cookie)", "title": "Dashboard"},
        {"url": " JavaScript:alert(1)", "title": "Spaced"},
        {"url": "java\tscript:alert(1)", "title": "Tabbed"},
        {"url": "data:text/html;base64,PHNjcmlwdD4=", "title": "Data"},
        {"url": "https://grafana.example/d/1?a=1&b=2", "title": "Grafana"},
        {"url": "HTTP://upper.example/", "title": "Upper"},
        {"url": "mailto:oncall@example.com", "title": "Mail on-call"},
    ]
    html = reparsed(build(alert(links=links))).get_body(("html",)).get_content()
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == [
        "https://grafana.example/d/1?a=1&amp;b=2",
        "HTTP://upper.example/",
        "mailto:oncall@example.com",
        "https://runbooks/disk",
    ]
    # The others are still there, as text the reader can see and copy.
    assert "<li>Dashboard: javascript:alert(document.cookie)</li>" in html
    assert "<li>Data: data:text/html;base64,PHNjcmlwdD4=</li>" in html
    assert "Spaced" in html and "Tabbed" in html
