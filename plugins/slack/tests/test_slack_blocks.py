"""An alert becomes Slack text and Block Kit blocks that read well and fit Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notifier_slack.blocks import (
    FIELD_CHARS,
    HEADER_CHARS,
    MAX_BLOCKS,
    SECTION_CHARS,
    TEXT_CHARS,
    fit_chars,
    mention_markup,
    render_blocks,
    render_payload,
    render_text,
    split_chars,
)
from notifier_slack.testing import validate_blocks

from notifier.models import Alert, DeliveryContext, Status
from notifier.render import TRUNCATION_MARKER

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def alert(**changes) -> Alert:
    fields = {
        "title": "Disk full on db-1",
        "body": "/var is at 99%",
        "severity": "critical",
        "labels": {"host": "db-1", "team": "storage"},
        "annotations": {"summary": "Disk almost full", "runbook_url": "https://runbooks/disk"},
        "starts_at": START,
    }
    return Alert(**{**fields, **changes})


def resolved(**changes) -> Alert:
    return alert(status=Status.RESOLVED, ends_at=START + timedelta(minutes=5), **changes)


def all_text(blocks) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e["text"] for e in block.get("elements", [])]
    return "\n".join(parts)


def test_a_firing_alert_has_a_red_header_with_status_severity_and_title():
    header = render_blocks(alert())[0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":red_circle: [FIRING][CRITICAL] Disk full on db-1"},
    }


def test_a_resolved_alert_has_a_check_mark_header_and_says_resolved_with_its_duration():
    blocks = render_blocks(resolved())
    assert blocks[0]["text"]["text"] == ":white_check_mark: [RESOLVED] Disk full on db-1"
    text = all_text(blocks)
    assert "resolved" in blocks[-1]["elements"][0]["text"]
    assert "(after 5m0s)" in text
    assert "[FIRING]" not in text


def test_severity_picks_the_header_emoji():
    assert render_blocks(alert(severity="warning"))[0]["text"]["text"].startswith(
        ":large_orange_circle:"
    )
    assert render_blocks(alert(severity="info"))[0]["text"]["text"].startswith(
        ":large_blue_circle:"
    )


def test_body_notes_labels_times_and_links_all_appear_in_the_blocks():
    blocks = render_blocks(alert())
    text = all_text(blocks)
    for expected in ("/var is at 99%", "*Summary*\nDisk almost full", "*host*\ndb-1", "*Started*"):
        assert expected in text
    assert "<https://runbooks/disk|Runbook>" in text
    field_section = next(b for b in blocks if "fields" in b)
    assert len(field_section["fields"]) == 4  # summary, host, team, started


def test_the_fallback_text_is_the_shared_slack_markdown():
    text = render_text(alert())
    assert text.startswith("*[FIRING][CRITICAL] Disk full on db-1*")
    assert "<https://runbooks/disk|Runbook>" in text


def test_slack_control_characters_are_escaped_everywhere():
    blocks = render_blocks(alert(body="a <b> & c", labels={"q": "<!channel>"}))
    text = all_text(blocks[1:])
    assert "a &lt;b&gt; &amp; c" in text
    assert "&lt;!channel&gt;" in text
    assert "<!channel>" not in text


def test_a_link_url_with_a_pipe_or_angle_bracket_stays_one_link():
    blocks = render_blocks(
        alert(annotations={}, links=[{"url": "https://x/?a=1|2>3", "title": "D"}])
    )
    assert "<https://x/?a=1%7C2%3E3|D>" in all_text(blocks)


def test_mentions_become_slack_mentions_in_text_and_blocks():
    assert mention_markup(["@all", "U123", "@here", "<@W9>", "SAB12", " "]) == (
        "<!channel> <@U123> <!here> <@W9> <!subteam^SAB12>"
    )
    payload = render_payload(alert(), DeliveryContext(mentions=("U123",)))
    assert payload["text"].startswith("<@U123>\n")
    assert payload["blocks"][1]["text"]["text"] == "<@U123>"


def test_link_previews_are_turned_off():
    payload = render_payload(alert())
    assert payload["unfurl_links"] is False
    assert payload["unfurl_media"] is False


def test_fit_chars_counts_characters_not_bytes():
    assert fit_chars("磁盘满了" * 10, 40) == "磁盘满了" * 10  # 40 characters, 120 bytes
    cut = fit_chars("磁盘满了" * 10, 20)
    assert len(cut) == 20
    assert cut.endswith(TRUNCATION_MARKER)


def test_fit_chars_never_splits_an_emoji_sequence_or_an_entity():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    cut = fit_chars("ab" + family * 5, 2 + 3 + len(TRUNCATION_MARKER))
    assert cut == "ab" + TRUNCATION_MARKER
    cut = fit_chars("x" * 10 + "&amp;" + "y" * 50, 12 + len(TRUNCATION_MARKER))
    assert cut == "x" * 10 + TRUNCATION_MARKER


def test_split_chars_cuts_after_lines_within_the_limit_and_loses_nothing():
    text = "\n".join(f"line {i} " + "磁" * 50 for i in range(200))
    pieces = split_chars(text, SECTION_CHARS)
    assert all(len(p) <= SECTION_CHARS for p in pieces)
    assert "".join(pieces) == text
    assert all(p.endswith("\n") for p in pieces[:-1])


@pytest.mark.parametrize("char", ["a", "磁", "\U0001f525"])
def test_a_huge_alert_fits_every_slack_limit(char):
    huge = alert(
        title="T" + char * 500,
        body=(char * 99 + "\n") * 2000,
        labels={f"label{i}": char * (50 if i % 2 else 3000) for i in range(300)},
        annotations={"summary": char * 5000},
        links=[{"url": f"https://dash/{i}", "title": char * 80} for i in range(200)],
    )
    payload = render_payload(huge, DeliveryContext(mentions=("@all",)))
    blocks = payload["blocks"]
    assert validate_blocks(blocks) is None
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= HEADER_CHARS
    assert len(payload["text"]) <= TEXT_CHARS
    assert all(len(f["text"]) <= FIELD_CHARS for b in blocks for f in b.get("fields", []))
    assert "more block(s) not shown" in all_text(blocks)
    assert blocks[-1]["type"] == "context"  # the fingerprint line survives the cut


def test_a_small_alert_needs_no_omission_note():
    assert "not shown" not in all_text(render_blocks(alert()))
