"""Channel-operation hook implementations for a plugin whose channel objects do the work.

``notifier_send`` and the group hooks are first-result hooks: every plugin is offered
every channel and answers only for the channels its kinds built. :class:`ChannelHooks`
writes those implementations: told which classes are the plugin's own, each calls the
channel's method of the same name (``send``, ``create_group``, ``get_group``,
``update_group``) for an instance of one of them and returns ``None`` for any other
object, so the host asks the next plugin. They are ordinary ``@hookimpl`` functions
for the hooks in :mod:`notifier.hookspecs`, which stay the extension points: a plugin
may still write any of them by hand.

In a plugin module, bind the ones the plugin needs to the hooks' names::

    hooks = ChannelHooks(sends=(NtfyChannel,))
    notifier_send = hooks.notifier_send

A plugin whose kinds are module-level records may hand them over too, and bind
``notifier_channel_kinds`` the same way::

    hooks = ChannelHooks(kinds=(NTFY,), sends=(NtfyChannel,))
    notifier_channel_kinds = hooks.notifier_channel_kinds
    notifier_send = hooks.notifier_send

and, for kinds that manage group chats::

    hooks = ChannelHooks(sends=(ChatChannel,), groups=(ChatChannel,))
    notifier_send = hooks.notifier_send
    notifier_create_group = hooks.notifier_create_group
    notifier_get_group = hooks.notifier_get_group
    notifier_update_group = hooks.notifier_update_group

An instance is also a plugin object of its own, e.g. for
``Dispatcher.from_config(..., plugins=[...])`` next to a plugin that contributes the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs

from notifier import hookimpl
from notifier.errors import PluginError
from notifier.kinds import ChannelKind
from notifier.models import Alert, DeliveryContext, GroupInfo, GroupSpec, GroupUpdate, SendResult

__all__ = ["ChannelHooks", "ManagesGroups", "Sends"]


class Sends(Protocol):
    """A channel object that delivers alerts itself."""

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult: ...


class ManagesGroups(Protocol):
    """A channel object that creates, reads and updates group chats itself."""

    def create_group(self, group: GroupSpec) -> GroupInfo: ...

    def get_group(self, chat_id: str) -> GroupInfo: ...

    def update_group(self, chat_id: str, update: GroupUpdate) -> GroupInfo: ...


_GROUP_METHODS = ("create_group", "get_group", "update_group")


def _classes(methods: tuple[str, ...]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Refuse a declared class that lacks one of ``methods``: the plugin then fails when
    it is imported, naming the class, instead of at its first delivery."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: tuple[type, ...]) -> None:
        for cls in value:
            if not isinstance(cls, type):
                raise PluginError(f"ChannelHooks {attribute.name}: expected classes, got {cls!r}")
            missing = [m for m in methods if not callable(getattr(cls, m, None))]
            if missing:
                raise PluginError(
                    f"ChannelHooks {attribute.name}: {cls.__qualname__} has no "
                    + ", ".join(f"{m}()" for m in missing)
                    + " method, which the hooks call for its channels"
                )

    return check


def _tuple(value: type | Iterable[type]) -> tuple[type, ...]:
    return (value,) if isinstance(value, type) else tuple(value)


def _kinds(value: Iterable[ChannelKind]) -> tuple[ChannelKind, ...]:
    return tuple(value)


@attrs.frozen
class ChannelHooks:
    """Hook implementations answering for instances of the plugin's own channel classes.

    :param sends: classes whose instances have ``send(alert, delivery) -> SendResult``;
        :meth:`notifier_send` answers for them.
    :param groups: classes whose instances have ``create_group(group)``,
        ``get_group(chat_id)`` and ``update_group(chat_id, update)``, each returning a
        :class:`~notifier.models.GroupInfo`; the three group hooks answer for them.
    :param kinds: the channel kinds :meth:`notifier_channel_kinds` contributes.
    :raises PluginError: a class lacks a method its hooks would call.
    """

    sends: tuple[type[Sends], ...] = attrs.field(
        default=(), converter=_tuple, validator=_classes(("send",))
    )
    groups: tuple[type[ManagesGroups], ...] = attrs.field(
        default=(), converter=_tuple, validator=_classes(_GROUP_METHODS)
    )
    kinds: tuple[ChannelKind, ...] = attrs.field(default=(), converter=_kinds)

    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        return list(self.kinds)

    @hookimpl
    def notifier_send(
        self, channel: object, alert: Alert, delivery: DeliveryContext
    ) -> SendResult | None:
        if not isinstance(channel, self.sends):
            return None
        return channel.send(alert, delivery)

    @hookimpl
    def notifier_create_group(self, channel: object, group: GroupSpec) -> GroupInfo | None:
        if not isinstance(channel, self.groups):
            return None
        return channel.create_group(group)

    @hookimpl
    def notifier_get_group(self, channel: object, chat_id: str) -> GroupInfo | None:
        if not isinstance(channel, self.groups):
            return None
        return channel.get_group(chat_id)

    @hookimpl
    def notifier_update_group(
        self, channel: object, chat_id: str, update: GroupUpdate
    ) -> GroupInfo | None:
        if not isinstance(channel, self.groups):
            return None
        return channel.update_group(chat_id, update)
