"""The options of the three WeCom kinds, and the rules that involve more than one option.

Option names are fixed so configurations stay portable. Each option is checked on its own
by the configuration loader against these :class:`~notifier.kinds.Option` records; the
``validate_*`` functions here check the combinations and return every problem found as a
:class:`~notifier.errors.ConfigIssue`, never quoting a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from notifier.errors import ConfigError, ConfigIssue
from notifier.http import HTTP_OPTIONS, is_http_url
from notifier.kinds import ChannelSpec, Option
from notifier.redact import Secret
from notifier_wework.endpoints import PUBLIC_API_ROOT

CHAT_ID = re.compile(r"[0-9A-Za-z]{1,32}")
MAX_DUPLICATE_CHECK = 4 * 3600  # the provider's ceiling for duplicate_check_interval

_FORMAT = (
    Option(
        "msgtype",
        choices=("text", "markdown"),
        default="text",
        help="render alerts as WeCom text or markdown",
    ),
    Option(
        "overflow",
        choices=("truncate", "split"),
        default="truncate",
        help="over the byte limit: cut with a marker, or send numbered parts",
    ),
)
_API_ROOT = Option(
    "api_root",
    default=PUBLIC_API_ROOT,
    help="the WeCom API root; point it at a proxy or private deployment",
)
_SAFE = Option("safe", bool, default=False, help="send as confidential (no forwarding)")

DIRECT: tuple[Option, ...] = (
    _API_ROOT,
    Option("corp_id", required=True, help="the corp id (企业ID)"),
    Option("secret", required=True, secret=True, help="the application's secret"),
    Option("chat_id", help="the app group chat to send to"),
    Option("agent_id", int, help="the application (agent) id, for application messages"),
    Option("to_user", list, default=[], help="user ids to send to ('@all': everyone)"),
    Option("to_party", list, default=[], help="department ids to send to"),
    Option("to_tag", list, default=[], help="tag ids to send to"),
    Option(
        "enable_duplicate_check",
        bool,
        default=False,
        help="let WeCom drop a repeat of the same application message",
    ),
    Option(
        "duplicate_check_interval",
        int,
        default=1800,
        minimum=1,
        help="seconds within which a repeat is dropped (at most 14400)",
    ),
    _SAFE,
    *_FORMAT,
    *HTTP_OPTIONS,
)

GATEWAY: tuple[Option, ...] = (
    Option(
        "gateway_root",
        required=True,
        help="the gateway root; calls go to create_appchat/ and send_appchat/ under it",
    ),
    Option("app_code", required=True, help="the gateway app code (bk_app_code)"),
    Option("app_secret", required=True, secret=True, help="the gateway app secret"),
    Option("username", required=True, help="the user the gateway acts as (bk_username)"),
    Option("chat_id", required=True, help="the app group chat to send to"),
    Option(
        "auth_in_body",
        bool,
        default=False,
        help="also put the credentials in the body, for older gateways",
    ),
    _SAFE,
    *_FORMAT,
    *HTTP_OPTIONS,
)

ROBOT: tuple[Option, ...] = (
    _API_ROOT,
    Option("key", required=True, secret=True, help="the key= value of the robot's webhook URL"),
    Option("mentioned_list", list, default=[], help="user ids to mention ('@all': everyone)"),
    Option("mentioned_mobile_list", list, default=[], help="mobile numbers to mention"),
    Option(
        "msgtype",
        choices=("text", "markdown", "news"),
        default="text",
        help="text (mentions), markdown, or news (an article linking the alert)",
    ),
    _FORMAT[1],
    *HTTP_OPTIONS,
)


def resolved(spec: ChannelSpec, schema: tuple[Option, ...]) -> dict[str, Any]:
    """``spec.options`` with the schema's defaults filled in (the loader does this too;
    code that builds a spec by hand may not)."""
    values = {opt.name: opt.default for opt in schema}
    values.update({k: v for k, v in spec.options.items() if v is not None})
    for opt in schema:
        if opt.secret and isinstance(values.get(opt.name), str):
            values[opt.name] = Secret(values[opt.name])  # registered for redaction
    return values


class _Issues:
    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec
        self.found: list[ConfigIssue] = []

    def add(self, option: str, expected: str) -> None:
        path = f"channels.{self.spec.name}" + (f".{option}" if option else "")
        self.found.append(ConfigIssue(file=self.spec.source, path=path, expected=expected))


def _check_root(issues: _Issues, name: str, value: Any) -> None:
    if not is_http_url(str(value or "")):
        issues.add(name, "an http:// or https:// URL")


def _check_chat_id(issues: _Issues, value: Any) -> None:
    if value is not None and not CHAT_ID.fullmatch(str(value)):
        issues.add("chat_id", "1 to 32 letters and digits (WeCom's chat id format)")


def validate_direct(spec: ChannelSpec) -> list[ConfigIssue]:
    o, issues = resolved(spec, DIRECT), _Issues(spec)
    _check_root(issues, "api_root", o["api_root"])
    chat, agent = o.get("chat_id"), o.get("agent_id")
    recipients = [n for n in ("to_user", "to_party", "to_tag") if o.get(n)]
    if chat and agent is not None:
        issues.add(
            "agent_id",
            "either chat_id (a group chat) or agent_id (an application message), not both",
        )
    elif agent is not None and not recipients:
        issues.add("to_user", "with agent_id, at least one of to_user, to_party, to_tag")
    elif agent is None:
        # Without any target the channel still creates and manages group chats.
        for name in recipients:
            issues.add(
                name,
                "only with agent_id (an application message); a group chat's members are "
                "set when it is created (notifier group create)",
            )
        if o["enable_duplicate_check"]:
            issues.add(
                "enable_duplicate_check",
                "only with agent_id: WeCom checks duplicates of application messages only",
            )
    _check_chat_id(issues, chat)
    if o["duplicate_check_interval"] > MAX_DUPLICATE_CHECK:
        issues.add("duplicate_check_interval", f"at most {MAX_DUPLICATE_CHECK} seconds (4 hours)")
    return issues.found


def validate_gateway(spec: ChannelSpec) -> list[ConfigIssue]:
    o, issues = resolved(spec, GATEWAY), _Issues(spec)
    _check_root(issues, "gateway_root", o.get("gateway_root"))
    _check_chat_id(issues, o.get("chat_id"))
    return issues.found


def validate_robot(spec: ChannelSpec) -> list[ConfigIssue]:
    o, issues = resolved(spec, ROBOT), _Issues(spec)
    _check_root(issues, "api_root", o["api_root"])
    key = o.get("key")
    plain = key.reveal() if isinstance(key, Secret) else str(key or "")
    if "://" in plain or "key=" in plain:  # never echo it: the URL holds the key
        issues.add("key", "the value after key= in the webhook URL, not the whole URL")
    return issues.found


def checked(
    validate: Callable[[ChannelSpec], list[ConfigIssue]],
    spec: ChannelSpec,
    schema: tuple[Option, ...],
) -> Mapping[str, Any]:
    """The resolved options, or :class:`ConfigError` with every issue ``validate`` found."""
    found = validate(spec)
    if found:
        raise ConfigError(found)
    return resolved(spec, schema)
