"""Rendering alerts and fitting text into UTF-8 byte limits."""

from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.models import Alert
from notifier.render import (
    DINGTALK,
    MARKDOWN,
    SLACK,
    TRUNCATION_MARKER,
    WECOM,
    byte_len,
    fit,
    render,
    render_card,
    render_html,
    render_markdown,
    render_text,
)


@pytest.fixture
def firing() -> Alert:
    return Alert(
        title="Disk almost full",
        body="db1 /var at 97%",
        severity="critical",
        labels={"host": "db1", "service": "pg_main", "__internal": "x"},
        annotations={
            "summary": "Disk usage above 95%",
            "description": "db1 /var at 97%",  # repeats the body: not shown twice
            "runbook_url": "https://runbooks.example/disk",
            "team": "storage",
        },
        links=[{"url": "https://grafana.example/d/1", "title": "Dashboard"}],
        starts_at="2024-05-01T10:00:00Z",
    )


@pytest.fixture
def resolved(firing: Alert) -> Alert:
    return attrs.evolve(firing, status="resolved", ends_at=firing.starts_at.timestamp() + 3725)


# -- rendering -------------------------------------------------------------------------


def test_text_shows_status_severity_title_body_labels_notes_and_links(firing):
    text = render_text(firing)
    assert text.splitlines()[0] == "[FIRING][CRITICAL] Disk almost full"
    for expected in (
        "db1 /var at 97%",
        "Summary: Disk usage above 95%",
        "host=db1",
        "service=pg_main",
        "Started: 2024-05-01 10:00:00 UTC",
        "Dashboard: https://grafana.example/d/1",
        "Runbook: https://runbooks.example/disk",
    ):
        assert expected in text
    assert text.count("db1 /var at 97%") == 1
    assert "__internal" not in text
    assert "storage" not in text  # annotations that are neither notes nor links stay out


def test_resolved_alerts_look_different_from_firing_ones(firing, resolved):
    assert render_text(resolved).startswith("[RESOLVED] Disk almost full")
    assert "[FIRING]" not in render_text(resolved)
    assert "Resolved: 2024-05-01 11:02:05 UTC (after 1h2m5s)" in render_text(resolved)
    assert '<font color="info">[RESOLVED]</font>' in render_markdown(resolved, WECOM)
    assert '<font color="warning">[FIRING][CRITICAL]</font>' in render_markdown(firing, WECOM)
    assert render_card(resolved)["tone"] == "ok"
    assert render_card(firing)["tone"] == "danger"
    assert render_card(resolved)["color"] != render_card(firing)["color"]


def test_info_alerts_use_a_quiet_colour_in_wecom(firing):
    info = attrs.evolve(firing, severity="info")
    assert '<font color="comment">[FIRING][INFO]</font>' in render_markdown(info, WECOM)


def test_markdown_dialects_differ_only_in_syntax(firing):
    plain = render_markdown(firing, MARKDOWN)
    assert plain.startswith("### [FIRING][CRITICAL] Disk almost full")
    assert "[Dashboard](https://grafana.example/d/1)" in plain
    assert "> host: `db1`" in plain
    assert "<font" not in plain
    slack = render_markdown(firing, SLACK)
    assert slack.startswith("*[FIRING][CRITICAL] Disk almost full*")
    assert "<https://grafana.example/d/1|Dashboard>" in slack
    ding = render_markdown(firing, DINGTALK)
    assert '<font color="#D93025">[FIRING][CRITICAL]</font>' in ding
    assert "\n\n" in ding


def test_slack_escapes_its_control_characters():
    alert = Alert(title="a <b> & c", labels={"x": "<y>"})
    slack = render_markdown(alert, SLACK)
    assert "a &lt;b&gt; &amp; c" in slack
    assert "<y>" not in slack


def test_html_escapes_every_value(firing):
    alert = attrs.evolve(firing, title="<script>x</script>", body="a & b")
    page = render_html(alert)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page and "a &amp; b" in page
    assert 'href="https://grafana.example/d/1"' in page


def test_card_is_plain_data(firing):
    card = render_card(firing)
    assert card["headline"] == "[FIRING][CRITICAL] Disk almost full"
    assert {"name": "host", "value": "db1"} in card["fields"]
    assert {"title": "Dashboard", "url": "https://grafana.example/d/1"} in card["links"]
    assert card["severity"] == "critical" and card["status"] == "firing"


def test_render_dispatches_by_format(firing):
    assert render(firing, "text") == render_text(firing)
    assert render(firing, "markdown", WECOM) == render_markdown(firing, WECOM)
    assert render(firing, "html") == render_html(firing)
    with pytest.raises(ValueError, match="unknown format"):
        render(firing, "pdf")  # type: ignore[arg-type]


def test_untitled_links_are_named_after_their_host():
    alert = Alert(title="t", links=["https://grafana.example/d/1"])
    assert "grafana.example: https://grafana.example/d/1" in render_text(alert)


# -- fitting: examples ---------------------------------------------------------------


def test_text_within_the_limit_is_returned_unchanged():
    assert fit("中文", 6) == ["中文"]
    assert fit("中文", 6, "split") == ["中文"]


def test_truncation_cuts_on_a_character_boundary_and_the_marker_fits():
    text = "中" * 1000  # 3000 bytes
    (out,) = fit(text, 2048)
    assert byte_len(out) <= 2048
    assert out.endswith(TRUNCATION_MARKER)
    assert text.startswith(out.removesuffix(TRUNCATION_MARKER))
    # 2048 - 14 marker bytes = 2034 = 678 characters of 3 bytes
    assert out.removesuffix(TRUNCATION_MARKER) == "中" * 678


def test_truncation_keeps_emoji_sequences_whole():
    family = "👨\u200d👩\u200d👧"  # one grapheme, 18 bytes
    thumbs = "👍🏽"  # thumbs up + skin tone
    flag = "🇨🇳"
    for unit in (family, thumbs, flag, "❤️"):
        text = unit * 50
        for limit in range(byte_len(TRUNCATION_MARKER) + byte_len(unit), 200, 7):
            kept = fit(text, limit)[0].removesuffix(TRUNCATION_MARKER)
            assert len(kept) % len(unit) == 0, (unit, limit, kept)


def test_marker_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match="marker"):
        fit("x" * 100, 5)


def test_split_numbers_parts_and_prefers_line_breaks():
    lines = [f"line {i}: " + "数据" * 10 for i in range(40)]
    text = "\n".join(lines)
    parts = fit(text, 400, "split")
    assert len(parts) > 1
    total = len(parts)
    for i, part in enumerate(parts, 1):
        assert part.startswith(f"({i}/{total}) ")
        assert byte_len(part) <= 400
    bodies = [p.split(") ", 1)[1] for p in parts]
    assert "".join(bodies) == text
    assert all(b.endswith("\n") for b in bodies[:-1])  # every cut is at a line end


def test_split_widens_the_prefix_when_parts_reach_ten():
    parts = fit("x" * 1000, 20, "split")
    assert len(parts) >= 10
    assert parts[0].startswith(f"(1/{len(parts)}) ")
    assert all(byte_len(p) <= 20 for p in parts)
    assert "".join(re.sub(r"^\(\d+/\d+\) ", "", p) for p in parts) == "x" * 1000


def test_split_caps_the_number_of_parts_and_marks_the_cut():
    parts = fit("字" * 3000, 500, "split", max_parts=3)
    assert len(parts) == 3
    assert parts[-1].startswith("(3/3) ") and parts[-1].endswith(TRUNCATION_MARKER)
    assert all(byte_len(p) <= 500 for p in parts)


def test_split_with_no_room_for_one_character_is_an_error():
    with pytest.raises(ValueError):
        fit("😀" * 10, 9, "split")  # "(9/9) " takes 6 of 9 bytes; an emoji needs 4


def test_unknown_overflow_is_an_error():
    with pytest.raises(ValueError, match="overflow"):
        fit("x" * 10, 5, "drop")  # type: ignore[arg-type]


# -- fitting: properties -------------------------------------------------------------

_ALPHABET = st.one_of(
    st.sampled_from("abc xyz\n\t中文字符测试告警磁盘😀👍🏽❤️🇨🇳👨\u200d👩\u200d👧é\u0301"),
    st.characters(codec="utf-8"),
)
texts = st.text(alphabet=_ALPHABET, max_size=400)
_PREFIX = re.compile(r"^\((\d+)/(\d+)\) ")


@settings(max_examples=300, deadline=None)
@given(text=texts, limit=st.integers(min_value=16, max_value=300))
def test_truncate_fits_and_keeps_a_prefix(text, limit):
    (out,) = fit(text, limit)
    assert byte_len(out) <= limit
    out.encode("utf-8")  # valid: never half a character
    if byte_len(text) <= limit:
        assert out == text
    else:
        assert out.endswith(TRUNCATION_MARKER)
        assert text.startswith(out.removesuffix(TRUNCATION_MARKER))


@settings(max_examples=300, deadline=None)
@given(text=texts, limit=st.integers(min_value=16, max_value=300))
def test_split_parts_fit_and_join_back_to_the_original(text, limit):
    parts = fit(text, limit, "split")
    assert all(byte_len(p) <= limit for p in parts)
    if len(parts) == 1 and not _PREFIX.match(parts[0]):
        assert parts == [text]
        return
    bodies = []
    for i, part in enumerate(parts, 1):
        match = _PREFIX.match(part)
        assert match and (int(match[1]), int(match[2])) == (i, len(parts))
        body = part[match.end() :]
        assert body  # no empty parts
        bodies.append(body)
    assert "".join(bodies) == text


@settings(max_examples=100, deadline=None)
@given(text=texts, limit=st.integers(min_value=40, max_value=300), cap=st.integers(1, 4))
def test_capped_split_fits_and_keeps_a_prefix(text, limit, cap):
    parts = fit(text, limit, "split", max_parts=cap)
    assert len(parts) <= cap
    assert all(byte_len(p) <= limit for p in parts)
    joined = "".join(_PREFIX.sub("", p, count=1) for p in parts)
    assert text.startswith(joined.removesuffix(TRUNCATION_MARKER))
