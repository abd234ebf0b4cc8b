"""The ``dingtalk-robot`` channel kind and its hooks.

A DingTalk custom robot answers every call with HTTP 200 and an ``errcode``/``errmsg``
envelope. The codes below are the ones DingTalk documents or that robots are seen to
answer; anything else is a permanent :class:`~notifier.errors.ProviderError` carrying
DingTalk's code and text.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from notifier import templates
from notifier.channelhooks import ChannelHooks
from notifier.errors import ConfigError, ConfigIssue
from notifier.http import (
    HTTP_OPTIONS,
    CallResult,
    Endpoint,
    ErrorCodes,
    HttpClient,
    errcode_envelope,
    is_http_url,
)
from notifier.http.options import client_from_options
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part, RateLimit
from notifier.models import Alert, DeliveryContext
from notifier.parts import SPLIT_OPTIONS, PartLedger, SplitChannel
from notifier_dingtalk.auth import RobotAuth
from notifier_dingtalk.messages import Mentions, part, render_messages

KIND = "dingtalk-robot"
API_ROOT = "https://oapi.dingtalk.com/"

BUSY = -1
TOO_FAST = 130101  # "send too fast, exceed 20 times per minute"
THROTTLED = 410100  # "发送速度太快而限流"
TOKEN_NOT_EXIST = 300001  # "token is not exist"
TOKEN_NOT_EXIST_EXTERNAL = 300005  # the same answer for robots in external groups
SECURITY = 310000  # "sign not match", "invalid timestamp", "keywords not in content", ip whitelist
TOKEN_MISSING = 400101  # "access_token不存在"
ROBOT_DISABLED = 400102  # "机器人已停用"

CODES = ErrorCodes(
    busy=(BUSY,),
    rate_limited=(TOO_FAST, THROTTLED),
    auth=(TOKEN_NOT_EXIST, TOKEN_NOT_EXIST_EXTERNAL, SECURITY, TOKEN_MISSING, ROBOT_DISABLED),
    # A robot over 20 messages a minute is throttled for ten minutes.
    rate_limit_wait=600.0,
)

SEND = Endpoint("send", "POST", "robot/send", parse=errcode_envelope(CODES), description="robot")

OPTIONS: tuple[Option, ...] = (
    Option(
        "access_token",
        required=True,
        secret=True,
        help="the robot's access_token (the value after access_token= in its webhook URL)",
    ),
    Option("secret", secret=True, help="the robot's signing secret (SEC...), if signing is on"),
    Option("api_root", default=API_ROOT, help="DingTalk's API root; calls go to robot/send"),
    Option("msgtype", default="markdown", choices=("text", "markdown"), help="message type"),
    *SPLIT_OPTIONS,
    Option("at_mobiles", list, default=(), help="phone numbers to @-mention in every message"),
    Option("at_user_ids", list, default=(), help="DingTalk user ids to @-mention"),
    Option("at_all", bool, default=False, help="@-mention everyone in the group"),
    *HTTP_OPTIONS,
)


class DingTalkRobot(SplitChannel):
    """One configured robot: its HTTP client and how to render for it."""

    kind = KIND

    def __init__(self, spec: ChannelSpec, client: HttpClient, ledger: PartLedger) -> None:
        super().__init__(spec, client, ledger)
        options = spec.options
        self.mentions = Mentions(
            tuple(options["at_mobiles"] or ()),
            tuple(options["at_user_ids"] or ()),
            bool(options["at_all"]),
        )

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        return render_messages(
            alert,
            msgtype=self.msgtype,
            mentions=self.mentions | Mentions.parse(delivery.mentions),
            overflow=self.overflow,
            max_parts=self.max_parts,
            text=templates.message(alert, delivery),
        )

    def post(self, message: dict[str, Any]) -> CallResult:
        return self.client.call(SEND, json=message)


def validate(spec: ChannelSpec) -> list[ConfigIssue]:
    """A whole webhook URL pasted as the token would answer "token is not exist" at the
    first alert; ``notifier check`` says so instead."""
    issues = []
    root = spec.options.get("api_root", API_ROOT)
    if not is_http_url(str(root)):
        where = f"channels.{spec.name}.api_root"
        issues.append(ConfigIssue(spec.source or "<inline>", where, "an http:// or https:// URL"))
    value = spec.options["access_token"].reveal()
    if "://" not in value and "access_token=" not in value:
        return issues
    hint = " (its access_token= value)" if "access_token" in parse_qs(_query(value)) else ""
    where = f"channels.{spec.name}.access_token"
    expected = f"the robot's access_token alone, not its webhook URL{hint}"
    return [*issues, ConfigIssue(spec.source or "<inline>", where, expected)]


def _query(url: str) -> str:
    try:
        return urlsplit(url).query
    except ValueError:  # a bracketed host that is no IP address: no query worth naming
        return ""


def build(spec: ChannelSpec, context: BuildContext) -> DingTalkRobot:
    issues = validate(spec)
    if issues:  # a spec not made by the config loader
        raise ConfigError(issues)
    token = spec.options["access_token"]
    auth = RobotAuth(token, spec.options.get("secret") or None, clock=context.clock)
    client = client_from_options(spec, context, spec.options["api_root"], auth)
    return DingTalkRobot(spec, client, PartLedger(clock=context.clock))


def preview(channel: DingTalkRobot, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    return [part(m) for m in channel.plan(alert, delivery)]


DINGTALK_ROBOT = ChannelKind(
    KIND,
    build,
    OPTIONS,
    bounded=True,
    description="DingTalk group robot: text or markdown, signed, with @-mentions",
    # DingTalk's documented limit: 20 messages a minute per robot.
    rate_limit=RateLimit(20, 60.0),
    validate=validate,
    preview=preview,
)

hooks = ChannelHooks(kinds=(DINGTALK_ROBOT,), sends=(DingTalkRobot,))
notifier_channel_kinds = hooks.notifier_channel_kinds
notifier_send = hooks.notifier_send
