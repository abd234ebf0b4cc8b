"""An alert as DingTalk robot messages: text or markdown, mentions, byte limits.

Rendering comes from :mod:`notifier.render` (plain text, or markdown in the
:data:`~notifier.render.DINGTALK` dialect with coloured status), so an alert reads the
same here as on every other channel. DingTalk highlights a mention only when the
message text contains ``@<mobile>`` or ``@<userId>`` *and* the ``at`` object lists it, so
both are added, to the first message of a split alert only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from notifier.kinds import Part
from notifier.mentions import is_mobile
from notifier.models import Alert
from notifier.render import DINGTALK, byte_len, fit, headline, render_markdown, render_text

__all__ = ["CONTENT_LIMIT", "TITLE_LIMIT", "Mentions", "part", "render_messages"]

#: bytes of UTF-8 a robot message's ``text.content`` / ``markdown.text`` may hold
CONTENT_LIMIT = 20000
#: bytes kept for a markdown message's ``title`` (shown in the chat list and notification)
TITLE_LIMIT = 128

ALL = ("@all", "all")
_SEPARATORS = re.compile(r"[ -]")


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


@attrs.frozen
class Mentions:
    """Who a message notifies: phone numbers, DingTalk user ids, or everyone."""

    mobiles: tuple[str, ...] = attrs.field(default=(), converter=_unique)
    user_ids: tuple[str, ...] = attrs.field(default=(), converter=_unique)
    everyone: bool = False

    @classmethod
    def parse(cls, values: Iterable[str]) -> Mentions:
        """Route mentions: ``"@all"`` is everyone, a mobile number (11 digits, or ``+``
        and 6 to 15 digits, spaces and dashes ignored: :func:`notifier.mentions.is_mobile`)
        is a mobile, anything else a user id; a leading ``@`` is ignored."""
        mobiles, user_ids, everyone = [], [], False
        for raw in values:
            value = raw.strip()
            if value.lower() in ALL:
                everyone = True
                continue
            value = value.removeprefix("@")
            number = _SEPARATORS.sub("", value)
            if is_mobile(number):
                mobiles.append(number)
            elif value:
                user_ids.append(value)
        return cls(tuple(mobiles), tuple(user_ids), everyone)

    def __or__(self, other: Mentions) -> Mentions:
        everyone = self.everyone or other.everyone
        return Mentions(self.mobiles + other.mobiles, self.user_ids + other.user_ids, everyone)

    def __bool__(self) -> bool:
        return bool(self.mobiles or self.user_ids or self.everyone)

    @property
    def suffix(self) -> str:
        """The ``@...`` text DingTalk needs in the message to highlight the mentions."""
        names = [f"@{m}" for m in (*self.mobiles, *self.user_ids)]
        return ("\n\n" + " ".join(names)) if names else ""

    def at(self) -> dict[str, Any]:
        return {
            "atMobiles": list(self.mobiles),
            "atUserIds": list(self.user_ids),
            "isAtAll": self.everyone,
        }


def render_messages(
    alert: Alert,
    *,
    msgtype: Literal["text", "markdown"] = "markdown",
    mentions: Mentions = Mentions(),
    overflow: Literal["truncate", "split"] = "truncate",
    max_parts: int = 3,
    limit: int = CONTENT_LIMIT,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """The robot message bodies for ``alert``, each within ``limit`` bytes of content.

    Too long an alert is truncated with a visible marker or, with ``overflow="split"``,
    sent as up to ``max_parts`` numbered messages (the last one truncated if needed).
    ``text`` (a template's output) replaces the rendered alert.
    """
    body = text
    if body is None:
        body = render_text(alert) if msgtype == "text" else render_markdown(alert, DINGTALK)
    suffix = mentions.suffix
    parts = fit(body, limit - byte_len(suffix), overflow, max_parts=max_parts)
    title = fit(headline(alert), TITLE_LIMIT)[0]
    messages: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        content = part + suffix if index == 0 else part
        if msgtype == "text":
            message: dict[str, Any] = {"msgtype": "text", "text": {"content": content}}
        else:
            message = {"msgtype": "markdown", "markdown": {"title": title, "text": content}}
        if index == 0 and mentions:
            message["at"] = mentions.at()
        messages.append(message)
    return messages


def part(message: dict[str, Any]) -> Part:
    """How ``notifier render`` shows one message: its content, size and limit."""
    content = message["text"]["content"] if "text" in message else message["markdown"]["text"]
    return Part(message, content, byte_len(content), CONTENT_LIMIT)
