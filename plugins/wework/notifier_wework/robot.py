"""Kind ``wework-robot``: a group robot's webhook (``webhook/send?key=...``).

The key is the whole credential, so it travels as a :class:`~notifier.redact.Secret`
through :class:`~notifier.http.QueryKeyAuth` and every URL shown is redacted. A robot
takes 20 messages a minute; the kind declares that limit and the dispatcher paces to it.
"""

from __future__ import annotations

from typing import Any

from notifier.http import HttpClient
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.templates import message
from notifier_wework import endpoints as ep
from notifier_wework.channels import WeComChannel
from notifier_wework.messages import Mentions, markdown_mentions, news_body, text_body


class RobotChannel(WeComChannel):
    """Text with mentions, markdown with ``<@userid>`` mentions, or a news article."""

    kind = "wework-robot"

    def __init__(self, name: str, client: HttpClient, *, mentions: Mentions, **common: Any):
        super().__init__(name, client, **common)
        self.mentions = mentions

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        return self._plan(alert, delivery)[0]

    def _plan(
        self, alert: Alert, delivery: DeliveryContext
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        mentions = Mentions.merge(self.mentions.users, self.mentions.mobiles, delivery.mentions)
        details: dict[str, Any] = {}
        msgtype = self.msgtype
        if msgtype == "news":
            news = news_body(alert, message(alert, delivery))
            if news is not None:
                if mentions:
                    details["mentions_not_sent"] = [*mentions.users, *mentions.mobiles]
                return [news], details
            msgtype = "markdown"  # an article needs a link; the alert has none
            details["sent_as"] = "markdown"
        if msgtype == "text":
            parts = self._parts(alert, delivery, "text")
            # Mentions ride on the first part only: one notification per alert.
            bodies = [text_body(parts[0], mentions), *(text_body(p) for p in parts[1:])]
            if mentions:
                details["mentioned"] = [*mentions.users, *mentions.mobiles]
            return bodies, details
        # Markdown notifies users named <@userid> in its content; it cannot notify
        # everyone or a mobile number, so those are reported instead of dropped quietly.
        unsent = [m for m in mentions.users if m == "@all"] + list(mentions.mobiles)
        if unsent:
            details["mentions_not_sent"] = unsent
        suffix = markdown_mentions(mentions.users)
        bodies = [
            {"msgtype": "markdown", "markdown": {"content": c}}
            for c in self._parts(alert, delivery, "markdown", suffix)
        ]
        return bodies, details

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        bodies, details = self._plan(alert, delivery)
        sent = self._send_all(bodies, ep.ROBOT_SEND, delivery)
        return sent.send_result(None, details)
