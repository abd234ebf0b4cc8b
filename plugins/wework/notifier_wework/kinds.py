"""The three WeCom channel kinds and how each builds its channel.

Every channel gets one :class:`~notifier.http.HttpClient` sized and clocked by the host's
:class:`~notifier.kinds.BuildContext`. Direct channels with the same API root, corp id and
secret share one access token (WeCom rate-limits ``gettoken``; a second token per process
only wastes quota); with the host's shared token store (``BuildContext.tokens``) every
process delivering for the deployment shares it too.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from notifier.errors import ConfigIssue
from notifier.http import (
    AccessTokenAuth,
    GatewayAuth,
    HttpClient,
    QueryKeyAuth,
    TokenCache,
    client_from_options,
    credential_id,
    endpoint_token_fetcher,
)
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part, RateLimit
from notifier.models import Alert, DeliveryContext
from notifier.parts import PartLedger
from notifier_wework import options
from notifier_wework.channels import AppTarget, DirectChannel, GatewayChannel, WeComChannel
from notifier_wework.endpoints import GETTOKEN
from notifier_wework.messages import Mentions, part
from notifier_wework.robot import RobotChannel

#: a group robot takes at most 20 messages in any 60 seconds
ROBOT_RATE = RateLimit(20, 60.0)

_tokens: weakref.WeakValueDictionary[tuple[str, str, int, int], TokenCache] = (
    weakref.WeakValueDictionary()
)
_tokens_lock = threading.Lock()


def _token_cache(spec: ChannelSpec, context: BuildContext, client: HttpClient) -> TokenCache:
    """The token cache for this credential, shared with live channels that use it."""
    o = spec.options
    identity = credential_id(client.api_root, o["corp_id"], o["secret"])
    key = (client.api_root, identity, id(context.clock), id(context.tokens))
    with _tokens_lock:
        cache = _tokens.get(key)
        if cache is None:
            params = {"corpid": o["corp_id"], "corpsecret": o["secret"]}
            fetch = endpoint_token_fetcher(client, GETTOKEN, params)
            cache = _tokens[key] = TokenCache(
                fetch, identity=identity, clock=context.clock, store=context.tokens
            )
        return cache


def _common(context: BuildContext, o: dict[str, Any]) -> dict[str, Any]:
    return {
        "msgtype": o["msgtype"],
        "overflow": o["overflow"],
        "ledger": PartLedger(clock=context.clock),
    }


def build_direct(spec: ChannelSpec, context: BuildContext) -> DirectChannel:
    o = dict(options.checked(options.validate_direct, spec, options.DIRECT))
    spec = _with(spec, o)
    client = client_from_options(spec, context, o["api_root"])
    # The token endpoint is called through the same client (it is declared
    # unauthenticated), so one session serves the token and the messages.
    client.auth = AccessTokenAuth(_token_cache(spec, context, client))
    app = None
    if o.get("agent_id") is not None:
        app = AppTarget(
            int(o["agent_id"]),
            users=tuple(str(u) for u in o["to_user"]),
            parties=tuple(str(p) for p in o["to_party"]),
            tags=tuple(str(t) for t in o["to_tag"]),
        )
    return DirectChannel(
        spec.name,
        client,
        chat_id=o.get("chat_id"),
        app=app,
        safe=o["safe"],
        duplicate_check=o["duplicate_check_interval"] if o["enable_duplicate_check"] else None,
        **_common(context, o),
    )


def build_gateway(spec: ChannelSpec, context: BuildContext) -> GatewayChannel:
    o = dict(options.checked(options.validate_gateway, spec, options.GATEWAY))
    auth = GatewayAuth(o["app_code"], o["app_secret"], o["username"], in_body=o["auth_in_body"])
    client = client_from_options(_with(spec, o), context, o["gateway_root"], auth)
    return GatewayChannel(
        spec.name, client, chat_id=o["chat_id"], safe=o["safe"], **_common(context, o)
    )


def build_robot(spec: ChannelSpec, context: BuildContext) -> RobotChannel:
    o = dict(options.checked(options.validate_robot, spec, options.ROBOT))
    auth = QueryKeyAuth("key", o["key"])
    client = client_from_options(_with(spec, o), context, o["api_root"], auth)
    mentions = Mentions.merge(o["mentioned_list"], o["mentioned_mobile_list"])
    return RobotChannel(spec.name, client, mentions=mentions, **_common(context, o))


def _with(spec: ChannelSpec, values: dict[str, Any]) -> ChannelSpec:
    return attrs.evolve(spec, options=values)


def preview(channel: WeComChannel, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    return [part(payload) for payload in channel.plan(alert, delivery)]


def _kind(
    name: str,
    build: Callable[[ChannelSpec, BuildContext], WeComChannel],
    kind_options: tuple[Option, ...],
    validate: Callable[[ChannelSpec], Iterable[ConfigIssue]],
    description: str,
    *,
    can_create_group: bool = False,
    rate_limit: RateLimit | None = None,
) -> ChannelKind:
    """A WeCom kind: every one keeps to the delivery's deadline and previews part by part."""
    return ChannelKind(
        name,
        build,
        kind_options,
        validate=validate,
        can_create_group=can_create_group,
        rate_limit=rate_limit,
        bounded=True,
        preview=preview,
        description=description,
    )


KINDS = (
    _kind(
        "wework",
        build_direct,
        options.DIRECT,
        options.validate_direct,
        "WeCom with an access token: an app group chat (chat_id) or an "
        "application message (agent_id with to_user / to_party / to_tag)",
        can_create_group=True,
    ),
    _kind(
        "wework-gateway",
        build_gateway,
        options.GATEWAY,
        options.validate_gateway,
        "WeCom app group chats through the enterprise API gateway",
        can_create_group=True,
    ),
    _kind(
        "wework-robot",
        build_robot,
        options.ROBOT,
        options.validate_robot,
        "a WeCom group robot's webhook (text with mentions, markdown, news)",
        rate_limit=ROBOT_RATE,
    ),
)
