"""An alert as a Slack message: fallback text plus Block Kit blocks, within Slack's limits.

Built from :func:`notifier.render.render_card` and :func:`notifier.render.render_markdown`
in the :data:`~notifier.render.SLACK` dialect, so severity, status, labels and links read
the same as on every other channel. The blocks are a header (status emoji and headline),
the body in sections, long notes as their own sections, short fields ten to a section,
the links, and a context line; a resolved alert gets a check-mark header and a
"resolved" context instead of the severity.

Slack counts **characters**, not bytes: 40,000 for ``text``, 3,000 for a section, 2,000
for a field, 150 for a header, and at most 50 blocks. Everything here is cut to fit
before sending, on grapheme boundaries and never inside an ``&amp;`` entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifier.models import Alert, DeliveryContext
from notifier.render import (
    SLACK,
    TRUNCATION_MARKER,
    byte_len,
    fit,
    render_card,
    render_markdown,
)

TEXT_CHARS = 40_000
SECTION_CHARS = 3_000
FIELD_CHARS = 2_000
HEADER_CHARS = 150
MAX_BLOCKS = 50
MAX_FIELDS = 10
# A note longer than this reads badly in a two-column field: it gets a section.
FIELD_VALUE_CHARS = 120

EMOJI = {
    "danger": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
    "ok": ":white_check_mark:",
}
_ENTITIES = ("&amp;", "&lt;", "&gt;")

Block = dict[str, Any]


def _entity_safe(head: str) -> str:
    """``head`` without a trailing partial ``&amp;``-style entity (Slack would show it)."""
    amp = head.rfind("&", max(0, len(head) - 4))
    if amp > 0 and not any(head.startswith(e, amp) for e in _ENTITIES):
        return head[:amp]
    return head


def fit_chars(text: str, limit: int, marker: str = TRUNCATION_MARKER) -> str:
    """``text`` in at most ``limit`` characters, truncated with ``marker`` if needed.

    :func:`notifier.render.fit` counts bytes; a byte budget equal to the UTF-8 size of
    the first ``limit`` characters makes it cut at (or before) that character, on a
    grapheme boundary.
    """
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    window = text[: limit + 1]  # one character over, so fit() has to cut
    keep = fit(window, byte_len(window[: limit - len(marker)]), marker="")[0]
    return _entity_safe(keep) + marker


def split_chars(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after a line break or a
    space when one is near, skipping pieces that are only whitespace."""
    pieces = []
    while len(text) > limit:
        window = text[: limit + 1]
        head = fit(window, byte_len(window[:limit]), "split", numbering="")[0]
        head = _entity_safe(head) or head
        pieces.append(head)
        text = text[len(head) :]
    pieces.append(text)
    return [p for p in pieces if p.strip()]


def mention_markup(mentions: Sequence[str]) -> str:
    """Route mentions in Slack syntax: ``@all`` -> ``<!channel>``, ``@here`` -> ``<!here>``,
    a member id ``U123`` -> ``<@U123>``; text already in ``<...>`` is kept."""
    out = []
    for raw in mentions:
        name = raw.strip()
        if not name:
            continue
        if name in ("@all", "@channel", "all"):
            out.append("<!channel>")
        elif name in ("@here", "here"):
            out.append("<!here>")
        elif name.startswith("<") and name.endswith(">"):
            out.append(name)
        elif name.startswith("S") and name[1:].isalnum() and name.isupper():
            out.append(f"<!subteam^{name}>")  # a user group id
        else:
            out.append(f"<@{name.removeprefix('@')}>")
    return " ".join(out)


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _link(title: str, url: str) -> str:
    # ``|`` and ``>`` end a Slack link early; percent-encoding keeps the URL working.
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{SLACK.escape(title)}>"


def _field_text(name: str, value: str, limit: int) -> str:
    label = f"*{SLACK.escape(name)}*\n"
    return label + fit_chars(SLACK.escape(value), max(limit - len(label), 1))


def _grouped(card: dict[str, Any]) -> list[list[Block]]:
    """Body sections, long-note sections and field sections, in display order."""
    body = split_chars(fit_chars(SLACK.escape(card["body"]), TEXT_CHARS), SECTION_CHARS)
    long_notes, short = [], []
    for field in card["fields"]:
        value = field["value"]
        if len(value) > FIELD_VALUE_CHARS or "\n" in value:
            long_notes.append(_section(_field_text(field["name"], value, SECTION_CHARS)))
        else:
            short.append({"type": "mrkdwn", "text": _field_text(field["name"], value, FIELD_CHARS)})
    fields = [
        {"type": "section", "fields": short[i : i + MAX_FIELDS]}
        for i in range(0, len(short), MAX_FIELDS)
    ]
    return [[_section(piece) for piece in body], long_notes, fields]


def _within(groups: list[list[Block]], room: int) -> list[Block]:
    """The groups' blocks in ``room`` blocks at most: each group keeps one block for
    every later non-empty group, and says how many of its own it had to leave out."""
    out: list[Block] = []
    for index, group in enumerate(groups):
        later = sum(1 for g in groups[index + 1 :] if g)
        allowed = room - len(out) - later
        if len(group) <= allowed:
            out += group
        elif allowed > 0:
            left_out = len(group) - (allowed - 1)
            out += group[: allowed - 1]
            out.append(_context(f"_…{left_out} more block(s) not shown; see the message text_"))
    return out


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _context_line(alert: Alert) -> str:
    if alert.resolved:
        facts = [":white_check_mark: resolved", f"was {alert.severity}"]
    else:
        facts = [f"severity *{alert.severity}*"]
    facts.append(f"fingerprint `{alert.fingerprint}`")
    if alert.source:
        facts.append(f"source {SLACK.escape(alert.source)}")
    return fit_chars(" · ".join(facts), SECTION_CHARS)


def _links_section(links: Sequence[dict[str, str]]) -> list[Block]:
    shown, size = [], 0
    for link in links:
        item = _link(link["title"], link["url"])
        if size + len(item) + 3 > SECTION_CHARS:
            break  # a half link is no link: stop at the last whole one
        shown.append(item)
        size += len(item) + 3
    return [_section(" · ".join(shown))] if shown else []


def render_blocks(
    alert: Alert, mentions: Sequence[str] = (), text: str | None = None
) -> list[Block]:
    """The Block Kit blocks for ``alert``: at most 50, each within its limits. ``text`` (a
    template's output, mrkdwn) replaces the body, notes and fields; the header, links and
    context line stay."""
    card = render_card(alert)
    header = fit_chars(f"{EMOJI[card['tone']]} {card['headline']}", HEADER_CHARS)
    head: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    markup = mention_markup(mentions)
    if markup:
        head.append(_section(fit_chars(markup, SECTION_CHARS)))
    tail = [*_links_section(card["links"]), _context(_context_line(alert))]
    if text is None:
        groups = _grouped(card)
    else:
        groups = [[_section(p) for p in split_chars(fit_chars(text, TEXT_CHARS), SECTION_CHARS)]]
    middle = _within(groups, MAX_BLOCKS - len(head) - len(tail))
    return [*head, *middle, *tail]


def render_text(alert: Alert, mentions: Sequence[str] = (), text: str | None = None) -> str:
    """The message ``text`` (notifications, screen readers, clients without blocks);
    ``text`` (a template's output) replaces the rendered alert."""
    markup = mention_markup(mentions)
    if text is None:
        text = render_markdown(alert, SLACK)
    return fit_chars(f"{markup}\n{text}" if markup else text, TEXT_CHARS)


def render_payload(
    alert: Alert, delivery: DeliveryContext | None = None, text: str | None = None
) -> dict[str, Any]:
    """The JSON body for an incoming webhook; ``text`` is a template's output."""
    mentions = delivery.mentions if delivery is not None else ()
    return {
        "text": render_text(alert, mentions, text),
        "blocks": render_blocks(alert, mentions, text),
        # Dashboard and runbook links would otherwise unfurl into large previews.
        "unfurl_links": False,
        "unfurl_media": False,
    }
