"""An alert as Feishu custom-bot messages: an interactive card or text, within 20 KB.

The card is :func:`notifier.render.render_card` mapped onto Feishu's card structure: a
header coloured by tone (red firing critical, green resolved, ...), the body and fields as
``lark_md``, links as buttons. Text messages use the shared plain rendering. Mentions are
``<at>`` tags: ``all`` for everyone, otherwise an open_id / user_id.

Feishu limits the whole request body (about 20 KB), so fitting measures the serialized
JSON, escapes included, and leaves room for the signature fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Literal

from notifier.kinds import Part
from notifier.models import Alert
from notifier.render import fit, render_card, render_text
from notifier_feishu.signing import SIGNATURE_OVERHEAD

__all__ = ["BODY_LIMIT", "body_size", "lark_md_escape", "part", "render_messages"]

#: bytes of UTF-8 JSON a custom bot accepts in one request
BODY_LIMIT = 20 * 1024
HEADER_LIMIT = 512
MAX_BUTTONS = 4
TEMPLATES = {"danger": "red", "warning": "orange", "ok": "green", "info": "blue"}

Make = Callable[[str, bool], dict[str, Any]]


def body_size(payload: dict[str, Any]) -> int:
    """The request body's size, serialized exactly as the HTTP client sends it."""
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def lark_md_escape(text: str) -> str:
    """``text`` safe inside ``lark_md``: no tags (an alert must not forge an ``<at>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _at_text(mentions: Iterable[str]) -> str:
    return " ".join(f'<at user_id="{m}"></at>' for m in mentions)


def _at_card(mentions: Iterable[str]) -> str:
    return " ".join(f"<at id={m}></at>" for m in mentions)


def _targets(mentions: Iterable[str]) -> list[str]:
    """Route mentions as Feishu ids: ``@all``/``all`` is ``all``, a leading ``@`` dropped."""
    ids = []
    for raw in mentions:
        value = raw.strip().removeprefix("@")
        if value and value not in ids:
            ids.append(value)
    return ids


def _button(title: str, url: str) -> dict[str, Any]:
    return {"tag": "button", "text": {"tag": "plain_text", "content": title}, "url": url}


def _card_skeleton(alert: Alert) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    card = render_card(alert)
    header = {
        "title": {"tag": "plain_text", "content": fit(card["headline"], HEADER_LIMIT)[0]},
        "template": TEMPLATES[card["tone"]],
    }
    buttons = [_button(link["title"], link["url"]) for link in card["links"][:MAX_BUTTONS]]
    actions = [{"tag": "action", "actions": buttons}] if buttons else []
    return header, actions


def _card_text(alert: Alert) -> str:
    card = render_card(alert)
    lines = [lark_md_escape(card["body"])] if card["body"] else []
    lines += [
        f"**{lark_md_escape(f['name'])}**: {lark_md_escape(f['value'])}" for f in card["fields"]
    ]
    lines += [
        f"[{lark_md_escape(link['title'])}]({link['url']})" for link in card["links"][MAX_BUTTONS:]
    ]
    return "\n".join(lines)


def _div(content: str) -> dict[str, Any]:
    return {"tag": "div", "text": {"tag": "lark_md", "content": content}}


def _card(alert: Alert, mentions: list[str]) -> Make:
    header, actions = _card_skeleton(alert)

    def make(text: str, first: bool) -> dict[str, Any]:
        elements = [_div(text)]
        if first:
            elements += actions
            elements += [_div(_at_card(mentions))] if mentions else []
        card = {"config": {"wide_screen_mode": True}, "header": header, "elements": elements}
        return {"msg_type": "interactive", "card": card}

    return make


def _text(mentions: list[str]) -> Make:
    suffix = ("\n" + _at_text(mentions)) if mentions else ""

    def make(text: str, first: bool) -> dict[str, Any]:
        return {"msg_type": "text", "content": {"text": text + (suffix if first else "")}}

    return make


def _fit_payloads(
    make: Make, text: str, limit: int, overflow: Literal["truncate", "split"], max_parts: int
) -> list[dict[str, Any]]:
    """``make(part, first)`` for parts of ``text`` such that every payload is within
    ``limit`` bytes.

    JSON escaping makes a payload larger than its text by an amount known only after
    serializing (``"`` and ``\\n`` double, control characters grow sixfold), so the text
    budget shrinks by the overshoot, scaled by the worst part's expansion, until it fits.
    """
    overhead = body_size(make("", True))
    budget = limit - overhead
    for _ in range(20):
        parts = fit(text, budget, overflow, max_parts=max_parts)
        payloads = [make(part, index == 0) for index, part in enumerate(parts)]
        sizes = [body_size(p) for p in payloads]
        worst = max(range(len(parts)), key=sizes.__getitem__)
        over = sizes[worst] - limit
        if over <= 0:
            return payloads
        expansion = (sizes[worst] - overhead) / max(len(parts[worst].encode("utf-8")), 1)
        budget -= int(over / max(expansion, 1.0)) + 1
    raise ValueError(f"cannot fit the alert into {limit} bytes")  # pragma: no cover


def render_messages(
    alert: Alert,
    *,
    msgtype: Literal["interactive", "text"] = "interactive",
    mentions: Iterable[str] = (),
    overflow: Literal["truncate", "split"] = "truncate",
    max_parts: int = 3,
    limit: int = BODY_LIMIT,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """The request bodies for ``alert`` (signature fields not included, room left).

    ``text`` (a template's output) replaces the text message, or the card's body (the
    ``lark_md`` element below the header; the header and link buttons stay).
    """
    targets = _targets(mentions)
    room = limit - SIGNATURE_OVERHEAD
    if msgtype == "text":
        body = render_text(alert) if text is None else text
        return _fit_payloads(_text(targets), body, room, overflow, max_parts)
    body = _card_text(alert) if text is None else text
    return _fit_payloads(_card(alert, targets), body, room, overflow, max_parts)


def part(payload: dict[str, Any]) -> Part:
    """How ``notifier render`` shows one request body: the whole JSON counts."""
    if payload["msg_type"] == "text":
        content = payload["content"]["text"]
    else:
        content = "\n".join(
            e["text"]["content"] for e in payload["card"]["elements"] if "text" in e
        )
    return Part(payload, content, body_size(payload), BODY_LIMIT - SIGNATURE_OVERHEAD)
