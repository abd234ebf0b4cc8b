"""The WeCom channel kinds and their hooks (registered through the ``notifier`` entry point).

Each operation hook answers only for channels this plugin built and returns ``None`` for
any other, so the host asks the next plugin. The robot kind cannot create or manage
groups: its hooks return ``None`` and the host raises ``UnsupportedOperation``.
"""

from __future__ import annotations

from typing import Any

from notifier import hookimpl
from notifier.kinds import ChannelKind
from notifier.models import Alert, DeliveryContext, GroupInfo, GroupSpec, GroupUpdate, SendResult
from notifier_wework.channels import DirectChannel, GatewayChannel, WeComChannel
from notifier_wework.kinds import KINDS

_GROUP_CHANNELS = (DirectChannel, GatewayChannel)


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return list(KINDS)


@hookimpl
def notifier_send(channel: Any, alert: Alert, delivery: DeliveryContext) -> SendResult | None:
    if not isinstance(channel, WeComChannel):
        return None
    return channel.send(alert, delivery)


@hookimpl
def notifier_create_group(channel: Any, group: GroupSpec) -> GroupInfo | None:
    if not isinstance(channel, _GROUP_CHANNELS):
        return None
    return channel.create_group(group)


@hookimpl
def notifier_get_group(channel: Any, chat_id: str) -> GroupInfo | None:
    if not isinstance(channel, _GROUP_CHANNELS):
        return None
    return channel.get_group(chat_id)


@hookimpl
def notifier_update_group(channel: Any, chat_id: str, update: GroupUpdate) -> GroupInfo | None:
    if not isinstance(channel, _GROUP_CHANNELS):
        return None
    return channel.update_group(chat_id, update)
