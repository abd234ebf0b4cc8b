"""The ``feishu-bot`` channel kind and its hooks.

The webhook URL is the credential: ``https://open.feishu.cn/open-apis/bot/v2/hook/<token>``
(``open.larksuite.com`` for Lark). The HTTP client is rooted at the URL without its last
segment and the token is filled into the path at the moment of the call, so it is a
:class:`~notifier.redact.Secret` everywhere else. Feishu answers HTTP 200 with
``{"code": …, "msg": …}``; ``code`` 0 is success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifier import templates
from notifier.channelhooks import ChannelHooks
from notifier.errors import ConfigIssue
from notifier.http import (
    HTTP_OPTIONS,
    CallResult,
    Endpoint,
    ErrorCodes,
    HttpClient,
    errcode_envelope,
    split_webhook_url,
)
from notifier.http.options import webhook_client
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part, RateLimit
from notifier.models import Alert, DeliveryContext
from notifier.parts import SPLIT_OPTIONS, PartLedger, SplitChannel
from notifier.redact import Secret
from notifier_feishu.messages import lark_md_escape, part, render_messages
from notifier_feishu.signing import BodySignature

KIND = "feishu-bot"

TOO_MANY_REQUESTS = 9499  # "too many request"
FREQUENCY_LIMITED = 11232  # "frequency limited": over 5 a second or 100 a minute
TOKEN_INVALID = 19001  # "param invalid: incoming webhook access token invalid"
PARAMS_ERROR = 19002  # "params error" (e.g. msg_type missing)
SIGN_FAILED = 19021  # "sign match fail or timestamp is not within one hour from current time"
IP_NOT_ALLOWED = 19022  # "Ip Not Allowed"
KEYWORDS_NOT_FOUND = 19024  # "Key Words Not Found"

CODES = ErrorCodes(
    rate_limited=(TOO_MANY_REQUESTS, FREQUENCY_LIMITED),
    auth=(TOKEN_INVALID, SIGN_FAILED, IP_NOT_ALLOWED),
    # Feishu sends no Retry-After; the longer of its two windows is a minute.
    rate_limit_wait=60.0,
)

SEND = Endpoint(
    "send",
    "POST",
    "{token}",
    parse=errcode_envelope(CODES, code_field="code", message_field="msg"),
    description="custom bot message",
)

OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        required=True,
        secret=True,
        help="the bot's webhook URL (https://open.feishu.cn/open-apis/bot/v2/hook/...)",
    ),
    Option("secret", secret=True, help="the bot's signing secret, if signature verification is on"),
    Option("msgtype", default="interactive", choices=("interactive", "text"), help="message type"),
    *SPLIT_OPTIONS,
    *HTTP_OPTIONS,
)


class FeishuBot(SplitChannel):
    """One configured custom bot."""

    kind = KIND

    def __init__(
        self, spec: ChannelSpec, client: HttpClient, token: Secret, ledger: PartLedger
    ) -> None:
        super().__init__(spec, client, ledger)
        self._token = token

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        return render_messages(
            alert,
            msgtype=self.msgtype,
            mentions=delivery.mentions,
            overflow=self.overflow,
            max_parts=self.max_parts,
            text=templates.message(alert, delivery),
        )

    def post(self, message: dict[str, Any]) -> CallResult:
        return self.client.call(SEND, json=message, path_params={"token": self._token.reveal()})


def validate(spec: ChannelSpec) -> list[ConfigIssue]:
    """The URL must be a webhook URL ending in its token (the URL is never echoed)."""
    if split_webhook_url(spec.options["url"].reveal()) is not None:
        return []
    where = f"channels.{spec.name}.url"
    expected = "the bot's webhook URL, https://open.feishu.cn/open-apis/bot/v2/hook/<token>"
    return [ConfigIssue(spec.source or "<inline>", where, expected)]


def build(spec: ChannelSpec, context: BuildContext) -> FeishuBot:
    secret = spec.options.get("secret")
    auth = BodySignature(secret, clock=context.clock) if secret else None
    client, token = webhook_client(spec, context, validate, auth)
    return FeishuBot(spec, client, token, PartLedger(clock=context.clock))


def preview(channel: FeishuBot, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    return [part(m) for m in channel.plan(alert, delivery)]


def template_escape(spec: ChannelSpec) -> Callable[[str], str] | None:
    """Alert text in a card template must not become an ``<at>`` tag or a link: escaped
    like the card's own text. Text messages show entities as they are, so stay plain."""
    return lark_md_escape if spec.options["msgtype"] == "interactive" else None


FEISHU_BOT = ChannelKind(
    KIND,
    build,
    OPTIONS,
    bounded=True,
    description="Feishu / Lark custom bot: interactive cards or text, signed",
    # Feishu allows 5 messages a second and 100 a minute per bot; a kind declares one
    # window, and at most 5 in any 3 seconds keeps both (5/s, and 20 x 5 = 100 a minute).
    rate_limit=RateLimit(5, 3.0),
    validate=validate,
    preview=preview,
    template_escape=template_escape,
)

hooks = ChannelHooks(kinds=(FEISHU_BOT,), sends=(FeishuBot,))
notifier_channel_kinds = hooks.notifier_channel_kinds
notifier_send = hooks.notifier_send
