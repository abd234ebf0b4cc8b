"""Alerts as WeCom message bodies: text or markdown within WeCom's byte limits, mentions,
and robot news articles.

WeCom limits content in UTF-8 **bytes** (text 2048, markdown 4096) and rejects, rather
than cuts, anything longer. :func:`contents` renders an alert with the shared renderer
(WeCom's markdown dialect) and fits it with :func:`notifier.render.fit`: truncated with a
visible marker or split into numbered parts, every part within the limit. Mentions that
travel inside the content (markdown ``<@userid>``) are counted in the limit too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs

from notifier.kinds import Part
from notifier.mentions import is_mobile
from notifier.models import Alert
from notifier.render import WECOM, byte_len, fit, headline, render_markdown, render_text

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
LIMITS = {"text": TEXT_LIMIT, "markdown": MARKDOWN_LIMIT}
NEWS_TITLE_LIMIT = 128
NEWS_DESCRIPTION_LIMIT = 512
EVERYONE = "@all"

Overflow = Literal["truncate", "split"]


@attrs.frozen
class Mentions:
    """Who a robot message notifies: user ids and mobile numbers (``"@all"``: everyone)."""

    users: tuple[str, ...] = ()
    mobiles: tuple[str, ...] = ()

    @classmethod
    def merge(
        cls, users: Iterable[str], mobiles: Iterable[str], extra: Iterable[str] = ()
    ) -> Mentions:
        """Configured mentions plus a route's (``extra``), each once, in order."""
        users, mobiles = list(users), list(mobiles)
        for who in extra:
            # A mobile number (notifier.mentions.is_mobile) goes to mentioned_mobile_list.
            (mobiles if is_mobile(who) else users).append(who)
        return cls(_unique(users), _unique(mobiles))

    def __bool__(self) -> bool:
        return bool(self.users or self.mobiles)

    @property
    def everyone(self) -> bool:
        return EVERYONE in self.users or EVERYONE in self.mobiles


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


def render(alert: Alert, msgtype: str) -> str:
    """The alert as WeCom text or markdown (resolved alerts are tagged and coloured apart)."""
    if msgtype == "markdown":
        return render_markdown(alert, WECOM)
    return render_text(alert)


def markdown_mentions(users: Sequence[str]) -> str:
    """``<@userid>`` for each user, the form WeCom markdown notifies (it has none for all)."""
    return " ".join(f"<@{u}>" for u in users if u != EVERYONE)


def contents(text: str, msgtype: str, overflow: Overflow, *, suffix: str = "") -> list[str]:
    """``text`` fitted to ``msgtype``'s byte limit; ``suffix`` (a mention line) ends the
    first part and is counted in its limit. Never longer than the limit, never empty."""
    limit = LIMITS[msgtype]
    tail = f"\n{suffix}" if suffix else ""
    room = limit - byte_len(tail)
    if room < limit // 2:  # hundreds of mentions: keep the alert readable, drop the line
        tail, room = "", limit
    parts = fit(text, room, overflow)
    parts[0] += tail
    return parts


def text_body(content: str, mentions: Mentions | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"content": content}
    if mentions is not None and mentions.users:
        inner["mentioned_list"] = list(mentions.users)
    if mentions is not None and mentions.mobiles:
        inner["mentioned_mobile_list"] = list(mentions.mobiles)
    return {"msgtype": "text", "text": inner}


def markdown_body(content: str) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": content}}


def body(msgtype: str, content: str, mentions: Mentions | None = None) -> dict[str, Any]:
    return text_body(content, mentions) if msgtype == "text" else markdown_body(content)


def news_body(alert: Alert, description: str | None = None) -> dict[str, Any] | None:
    """One news article for the alert (title, description, its first link), or ``None``
    when the alert has no link: WeCom needs a URL for an article. ``description`` (a
    template's output) replaces the alert's body."""
    links = list(alert.links)
    if not links:
        return None
    if description is None:
        description = alert.body.strip() or render_text(alert).split("\n", 1)[-1]
    article = {
        "title": fit(headline(alert), NEWS_TITLE_LIMIT)[0],
        "description": fit(description, NEWS_DESCRIPTION_LIMIT)[0],
        "url": links[0].url,
    }
    picurl = alert.annotations.get("image_url") or alert.annotations.get("picurl")
    if picurl:
        article["picurl"] = picurl
    return {"msgtype": "news", "news": {"articles": [article]}}


def part(payload: dict[str, Any]) -> Part:
    """How ``notifier render`` shows one request body: its limited content and size."""
    msgtype = payload.get("msgtype", "text")
    if msgtype == "news":
        article = payload["news"]["articles"][0]
        content = article["description"]
        return Part(payload, content, byte_len(content), NEWS_DESCRIPTION_LIMIT)
    content = payload[msgtype]["content"]
    return Part(payload, content, byte_len(content), LIMITS[msgtype])
