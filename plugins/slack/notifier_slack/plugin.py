"""The ``slack`` channel kind (an incoming webhook) and its hooks.

The webhook URL is the credential: ``https://hooks.slack.com/services/T…/B…/<token>``.
The channel's HTTP client is rooted at the URL without its last segment and the send
endpoint's path is that segment, filled in at the moment of the call, so the token is a
:class:`~notifier.redact.Secret` everywhere else (logs, events, errors, ``repr``).
"""

from __future__ import annotations

from typing import Any

from notifier import templates
from notifier.channelhooks import ChannelHooks
from notifier.errors import ConfigIssue
from notifier.http import HTTP_OPTIONS, Endpoint, HttpClient, split_webhook_url
from notifier.http.options import webhook_client
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part, RateLimit
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.redact import Secret, reveal
from notifier.render import SLACK as SLACK_MRKDWN
from notifier_slack.answers import webhook_answer
from notifier_slack.blocks import TEXT_CHARS, render_payload

KIND = "slack"

OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        required=True,
        secret=True,
        help="the incoming webhook URL from the Slack app (https://hooks.slack.com/services/...)",
    ),
    *HTTP_OPTIONS,
)

SEND = Endpoint(
    "send",
    "POST",
    "{token}",
    parse=webhook_answer,
    description="incoming webhook message",
)


class SlackChannel:
    """One configured incoming webhook."""

    kind = KIND

    def __init__(self, name: str, client: HttpClient, token: Secret) -> None:
        self.name = name
        self.client = client
        self._token = token

    def __repr__(self) -> str:
        return f"SlackChannel({self.name!r})"

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        result = self.client.call(
            SEND, json=self.payload(alert, delivery), path_params={"token": self._token.reveal()}
        )
        details = {"request_id": result.request_id} if result.request_id else {}
        return SendResult(message_id=None, attempts=result.attempts, details=details)

    def payload(self, alert: Alert, delivery: DeliveryContext) -> dict[str, Any]:
        """The request body a send delivers (``notifier render`` shows it)."""
        return render_payload(alert, delivery, templates.message(alert, delivery))

    def close(self) -> None:
        self.client.close()


def preview(channel: SlackChannel, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    payload = channel.payload(alert, delivery)
    text = payload["text"]
    return [Part(payload, text, len(text), TEXT_CHARS, "characters")]


def validate(spec: ChannelSpec) -> list[ConfigIssue]:
    """The URL's shape, checked by the config loader; the URL itself is never echoed."""
    if split_webhook_url(reveal(spec.options.get("url")) or "") is not None:
        return []
    expected = "the incoming webhook URL, https://hooks.slack.com/services/T…/B…/…"
    return [ConfigIssue(spec.source, f"channels.{spec.name}.url", expected)]


def build(spec: ChannelSpec, context: BuildContext) -> SlackChannel:
    client, token = webhook_client(spec, context, validate)
    return SlackChannel(spec.name, client, token)


SLACK = ChannelKind(
    KIND,
    build,
    OPTIONS,
    bounded=True,
    description="Slack incoming webhook: text plus Block Kit blocks",
    # Slack allows about one message a second per webhook, with short bursts.
    rate_limit=RateLimit(1, 1.0),
    validate=validate,
    preview=preview,
    # Alert text in a template must not become <!channel> or a link: escaped like the
    # standard layout escapes it.
    template_escape=lambda spec: SLACK_MRKDWN.escape,
)

hooks = ChannelHooks(kinds=(SLACK,), sends=(SlackChannel,))
notifier_channel_kinds = hooks.notifier_channel_kinds
notifier_send = hooks.notifier_send
