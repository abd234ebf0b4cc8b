"""Alerts as text, markdown, HTML or a neutral card, and fitting text into byte limits.

Every channel renders from the same pieces, so severity, status, labels and links look
alike everywhere; a channel only picks a format and, for markdown, a :class:`Dialect`
(:data:`WECOM`, :data:`DINGTALK`, :data:`SLACK` or plain :data:`MARKDOWN`). Resolved
alerts carry ``[RESOLVED]`` and the "ok" tone (green where colour exists); firing ones
carry ``[FIRING]``, the severity and a tone from it.

Providers limit messages in UTF-8 **bytes**. :func:`fit` cuts on a character boundary,
avoids breaking an emoji sequence when it can, and either truncates with a visible marker
or splits into numbered parts, every one within the limit.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from notifier.models import Alert

__all__ = [
    "DINGTALK",
    "MARKDOWN",
    "PART_PREFIX",
    "SLACK",
    "TRUNCATION_MARKER",
    "WECOM",
    "Dialect",
    "byte_len",
    "fit",
    "headline",
    "render",
    "render_card",
    "render_html",
    "render_markdown",
    "render_text",
    "status_tag",
    "tone",
]

TRUNCATION_MARKER = "…[truncated]"
PART_PREFIX = "({index}/{total}) "

# Annotations shown as text; URL-valued annotations become links. Others stay hidden.
SHOWN_ANNOTATIONS = ("summary", "description", "message", "impact", "action")
_SEVERITY_TONES = {"critical": "danger", "error": "danger", "warning": "warning", "info": "info"}
_HEX = {"danger": "#D93025", "warning": "#E37400", "ok": "#188038", "info": "#1A73E8"}
# The only links HTML makes clickable. Matched literally at the start, since a browser
# ignores leading blanks and tabs inside a scheme (``java\tscript:``): anything else
# (javascript:, data:, vbscript:, a relative path) is shown as text.
_LINKABLE = re.compile(r"(?i)(?:https?://|mailto:)")


def tone(alert: Alert) -> str:
    """``"ok"`` for a resolved alert, else ``"danger"``, ``"warning"`` or ``"info"``."""
    return "ok" if alert.resolved else _SEVERITY_TONES.get(alert.severity, "warning")


def status_tag(alert: Alert) -> str:
    """``[RESOLVED]`` or ``[FIRING][CRITICAL]`` (the severity upper-cased)."""
    return "[RESOLVED]" if alert.resolved else f"[FIRING][{alert.severity.upper()}]"


def headline(alert: Alert) -> str:
    """The one-line summary every format starts with: status tag and title."""
    return f"{status_tag(alert)} {alert.title}"


def _identity(text: str) -> str:
    return text


def _slack_escape(text: str) -> str:  # Slack mrkdwn reserves only these three
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@attrs.frozen
class Dialect:
    """How one markdown flavour writes headings, emphasis, links and colour.

    Templates use ``{}`` (or ``{title}``/``{url}``, ``{color}``/``{text}``). ``colors``
    maps a tone to the dialect's colour value; without it, text is not coloured.
    """

    name: str
    heading: str = "### {}"
    bold: str = "**{}**"
    code: str = "`{}`"
    link: str = "[{title}]({url})"
    quote: str = "> "
    colored: str = ""
    colors: Mapping[str, str] = attrs.field(factory=dict)
    newline: str = "\n"
    escape: Callable[[str], str] = _identity

    def color(self, text: str, tone_name: str) -> str:
        value = self.colors.get(tone_name)
        return self.colored.format(color=value, text=text) if value and self.colored else text


MARKDOWN = Dialect("markdown")
WECOM = Dialect(
    "wecom",
    colored='<font color="{color}">{text}</font>',
    colors={"danger": "warning", "warning": "warning", "ok": "info", "info": "comment"},
)
DINGTALK = Dialect(
    "dingtalk", colored='<font color="{color}">{text}</font>', colors=_HEX, newline="\n\n"
)
SLACK = Dialect("slack", heading="*{}*", bold="*{}*", link="<{url}|{title}>", escape=_slack_escape)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _duration(start: datetime, end: datetime) -> str:
    hours, rest = divmod(max(0, int((end - start).total_seconds())), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs}s"


def _notes(alert: Alert) -> list[tuple[str, str]]:
    """Annotations worth showing, in a stable order, skipping what repeats title/body."""
    seen = {alert.title.strip(), alert.body.strip()}
    notes = []
    for key in SHOWN_ANNOTATIONS:
        value = alert.annotations.get(key, "").strip()
        if value and value not in seen:
            notes.append((key, value))
            seen.add(value)
    return notes


def _links(alert: Alert) -> list[tuple[str, str]]:
    """``(title, url)`` for the alert's links, then URL-valued annotations."""
    links = [(link.title or urlsplit(link.url).netloc or "Link", link.url) for link in alert.links]
    known = {url for _, url in links}
    for key, value in sorted(alert.annotations.items()):
        if value.startswith(("http://", "https://")) and value not in known:
            title = key.removesuffix("_url").replace("_", " ").strip().capitalize() or key
            links.append((title, value))
            known.add(value)
    return links


def _labels(alert: Alert) -> list[tuple[str, str]]:
    return [(k, v) for k, v in sorted(alert.labels.items()) if not k.startswith("__")]


def _times(alert: Alert) -> list[tuple[str, str]]:
    times = [("Started", _when(alert.starts_at))]
    if alert.resolved and alert.ends_at is not None:
        after = _duration(alert.starts_at, alert.ends_at)
        times.append(("Resolved", f"{_when(alert.ends_at)} (after {after})"))
    return times


def render_text(alert: Alert) -> str:
    """Plain text: the headline, body, notes, labels, times and links, one per line."""
    lines = [headline(alert)]
    if alert.body.strip():
        lines.append(alert.body.rstrip())
    lines += [f"{key.capitalize()}: {value}" for key, value in _notes(alert)]
    labels = _labels(alert)
    if labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in labels))
    lines += [f"{key}: {value}" for key, value in _times(alert)]
    lines += [f"{title}: {url}" for title, url in _links(alert)]
    return "\n".join(lines)


def render_markdown(alert: Alert, dialect: Dialect = MARKDOWN) -> str:
    """Markdown in ``dialect``: a coloured status heading, then the same parts as text."""
    esc, nl = dialect.escape, dialect.newline
    tag = dialect.color(status_tag(alert), tone(alert))
    blocks = [dialect.heading.format(f"{tag} {esc(alert.title)}")]
    if alert.body.strip():
        blocks.append(esc(alert.body.rstrip()))
    blocks += [f"{dialect.bold.format(k.capitalize())}: {esc(v)}" for k, v in _notes(alert)]
    labels = _labels(alert)
    if labels:
        blocks.append(
            nl.join(
                f"{dialect.quote}{esc(k)}: {dialect.code.format(esc(v).replace('`', chr(39)))}"
                for k, v in labels
            )
        )
    blocks += [f"{dialect.bold.format(k)}: {v}" for k, v in _times(alert)]
    links = _links(alert)
    if links:
        blocks.append(" | ".join(dialect.link.format(title=esc(t), url=u) for t, u in links))
    return nl.join(blocks)


def render_html(alert: Alert) -> str:
    """A self-contained HTML fragment (for email), every value escaped; only ``http``,
    ``https`` and ``mailto`` links are clickable, any other is shown as text."""
    esc = html.escape
    color = _HEX[tone(alert)]
    parts = [f'<h2 style="color:{color}">{esc(status_tag(alert))} {esc(alert.title)}</h2>']
    if alert.body.strip():
        parts.append(f'<p style="white-space:pre-wrap">{esc(alert.body.rstrip())}</p>')
    rows = [(k.capitalize(), v) for k, v in _notes(alert)] + _labels(alert) + _times(alert)
    if rows:
        cells = "".join(f"<tr><th align=left>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        parts.append(f"<table>{cells}</table>")
    links = _links(alert)
    if links:
        items = "".join(
            f'<li><a href="{esc(u)}">{esc(t)}</a></li>'
            if _LINKABLE.match(u)
            else f"<li>{esc(t)}: {esc(u)}</li>"
            for t, u in links
        )
        parts.append(f"<ul>{items}</ul>")
    return "\n".join(parts)


def render_card(alert: Alert) -> dict[str, Any]:
    """A neutral card (plain strings, no markup) that channels map onto their own
    structures (Feishu cards, Slack blocks, DingTalk action cards)."""
    return {
        "headline": headline(alert),
        "title": alert.title,
        "status": alert.status.value,
        "severity": alert.severity,
        "tone": tone(alert),
        "color": _HEX[tone(alert)],
        "body": alert.body.rstrip(),
        "fields": [{"name": k.capitalize(), "value": v} for k, v in _notes(alert)]
        + [{"name": k, "value": v} for k, v in _labels(alert)]
        + [{"name": k, "value": v} for k, v in _times(alert)],
        "links": [{"title": t, "url": u} for t, u in _links(alert)],
    }


Format = Literal["text", "markdown", "html"]


def render(alert: Alert, fmt: Format = "text", dialect: Dialect = MARKDOWN) -> str:
    """Render ``alert`` as ``"text"``, ``"markdown"`` (in ``dialect``) or ``"html"``."""
    if fmt == "text":
        return render_text(alert)
    if fmt == "markdown":
        return render_markdown(alert, dialect)
    if fmt == "html":
        return render_html(alert)
    raise ValueError(f"unknown format {fmt!r}; expected 'text', 'markdown' or 'html'")


# -- byte limits ----------------------------------------------------------------------


def byte_len(text: str) -> int:
    """The UTF-8 length of ``text`` in bytes."""
    return len(text.encode("utf-8"))


def _extends(char: str) -> bool:
    """Whether ``char`` attaches to the character before it (so a cut must not precede it)."""
    code = ord(char)
    return (
        code in (0x200D, 0x20E3)  # zero-width joiner, keycap
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or unicodedata.combining(char) != 0
    )


def _grapheme_safe(text: str, cut: int) -> int:
    """``cut`` moved back so it does not split a grapheme cluster (best effort), never to 0."""
    pos = cut
    while 0 < pos < len(text) and (
        _extends(text[pos])
        or text[pos - 1] == "\u200d"
        or (text[pos - 1] == "\r" and text[pos] == "\n")
    ):
        pos -= 1
    run = pos  # flags are pairs of regional indicators: never cut between the two
    while run > 0 and 0x1F1E6 <= ord(text[run - 1]) <= 0x1F1FF:
        run -= 1
    if (pos - run) % 2 and pos < len(text) and 0x1F1E6 <= ord(text[pos]) <= 0x1F1FF:
        pos -= 1
    return pos if pos > 0 else cut


def _prefix_chars(text: str, max_bytes: int) -> int:
    """The number of leading characters of ``text`` whose UTF-8 fits in ``max_bytes``."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return len(text)
    end = max(max_bytes, 0)
    while end > 0 and (data[end] & 0xC0) == 0x80:  # inside a multi-byte sequence
        end -= 1
    return len(data[:end].decode("utf-8"))


def _chunk_end(text: str, budget: int, *, prefer_lines: bool) -> int:
    """Where the first chunk of ``text`` within ``budget`` bytes should end (> 0)."""
    end = _prefix_chars(text, budget)
    if end >= len(text):
        return end
    if end == 0:
        raise ValueError(f"{budget} bytes cannot hold even one character")
    if prefer_lines:
        for sep in ("\n", " "):
            at = text.rfind(sep, 0, end)
            if at + 1 > end // 2:  # a boundary in the later half: keep it with this chunk
                return at + 1
    return _grapheme_safe(text, end)


def _chunks(text: str, budget: int) -> list[str]:
    chunks = []
    while text:
        end = _chunk_end(text, budget, prefer_lines=True)
        chunks.append(text[:end])
        text = text[end:]
    return chunks


def _truncate(text: str, max_bytes: int, marker: str) -> str:
    if byte_len(text) <= max_bytes:
        return text
    budget = max_bytes - byte_len(marker)
    if budget < 0:
        raise ValueError(f"the marker {marker!r} does not fit in {max_bytes} bytes")
    end = _prefix_chars(text, budget)
    end = _grapheme_safe(text, end) if end else 0
    return text[:end] + marker


def fit(
    text: str,
    max_bytes: int,
    overflow: Literal["truncate", "split"] = "truncate",
    marker: str = TRUNCATION_MARKER,
    *,
    numbering: str = PART_PREFIX,
    max_parts: int | None = None,
) -> list[str]:
    """``text`` as one or more messages of at most ``max_bytes`` UTF-8 bytes each.

    Text that fits comes back unchanged as the only element. Otherwise:

    * ``"truncate"``: one message, a prefix of ``text`` cut on a character (and, when
      cheap, grapheme) boundary, followed by ``marker``; the whole stays within the limit.
    * ``"split"``: numbered parts (``numbering`` formatted with ``index`` and ``total``,
      counted in the limit), cut preferably after a line break, else after a space, else
      on a grapheme boundary. Removing each prefix and joining gives back ``text``. With
      ``max_parts``, the last allowed part is truncated with ``marker``.

    :raises ValueError: when the limit cannot hold the marker, a prefix or one character.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if byte_len(text) <= max_bytes:
        return [text]
    if overflow == "truncate":
        return [_truncate(text, max_bytes, marker)]
    if overflow != "split":
        raise ValueError(f"overflow must be 'truncate' or 'split', got {overflow!r}")
    if max_parts is not None and max_parts < 1:
        raise ValueError(f"max_parts must be at least 1, got {max_parts}")
    digits = 1
    while True:
        widest = int("9" * digits)
        budget = max_bytes - byte_len(numbering.format(index=widest, total=widest))
        if budget <= 0:
            raise ValueError(f"{max_bytes} bytes cannot hold the part number {numbering!r}")
        chunks = _chunks(text, budget)
        if max_parts is not None and len(chunks) > max_parts:
            rest = "".join(chunks[max_parts - 1 :])
            chunks = [*chunks[: max_parts - 1], _truncate(rest, budget, marker)]
        if len(str(len(chunks))) <= digits:
            break
        digits += 1
    total = len(chunks)
    return [numbering.format(index=i, total=total) + c for i, c in enumerate(chunks, 1)]
