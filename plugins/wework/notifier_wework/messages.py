"""Alerts as WeCom message bodies: text or markdown within WeCom's byte limits, mentions,
and robot news articles.

WeCom limits content in UTF-8 **bytes** (text 2048, markdown 4096) and rejects, rather
than cuts, anything longer. :func:`contents` renders an alert with the shared renderer
(WeCom's markdown dialect) and fits it with :func:`notifier.render.fit`: truncated with a
visible marker or split into numbered parts, every part within the limit. Mentions that
travel inside the content (markdown ``<@userid>``) are counted in the limit too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import attrs

from notifier.models import Alert
from notifier.render import WECOM, byte_len, fit, headline, render_markdown, render_text

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
LIMITS = {"text": TEXT_LIMIT, "markdown": MARKDOWN_LIMIT}
NEWS_TITLE_LIMIT = 128
NEWS_DESCRIPTION_LIMIT = 512
EVERYONE = "@all"

Overflow = Literal["truncate", "split"]

# A mention that is a phone number goes to mentioned_mobile_list, anything else is a user id.
_MOBILE = re.compile(r"\+?\d{6,15}")


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
            (mobiles if _MOBILE.fullmatch(who) else users).append(who)
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


def news_body(alert: Alert) -> dict[str, Any] | None:
    """One news article for the alert (title, description, its first link), or ``None``
    when the alert has no link: WeCom needs a URL for an article."""
    links = list(alert.links)
    if not links:
        return None
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
