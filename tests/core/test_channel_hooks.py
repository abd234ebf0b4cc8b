"""ChannelHooks: a plugin names its channel classes and gets hooks that answer for them."""

from __future__ import annotations

import types
from pathlib import Path

import attrs
import pytest

from notifier import Alert, Dispatcher, hookimpl
from notifier.channelhooks import ChannelHooks
from notifier.errors import PluginError, ProviderError, UnsupportedOperation
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec
from notifier.models import DeliveryContext, GroupInfo, GroupSpec, GroupUpdate, SendResult
from notifier.plugins import PluginHost


@attrs.define
class Pager:
    """A channel that only sends."""

    name: str
    sent: list[str] = attrs.field(factory=list)
    failing: bool = False

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        if self.failing:
            raise ProviderError("pager refused it", retryable=True)
        self.sent.append(alert.title)
        return SendResult(message_id=f"{self.name}-{len(self.sent)}")

    def close(self) -> None:
        pass


@attrs.define
class Chat(Pager):
    """A channel that sends and manages its group chats."""

    groups: dict[str, GroupInfo] = attrs.field(factory=dict)

    def create_group(self, group: GroupSpec) -> GroupInfo:
        info = GroupInfo(chat_id=group.chat_id or "c1", name=group.name, members=group.members)
        self.groups[info.chat_id] = info
        return info

    def get_group(self, chat_id: str) -> GroupInfo:
        return self.groups[chat_id]

    def update_group(self, chat_id: str, update: GroupUpdate) -> GroupInfo:
        info = attrs.evolve(self.groups[chat_id], name=update.name or self.groups[chat_id].name)
        self.groups[chat_id] = info
        return info


def pager_plugin() -> types.ModuleType:
    """A plugin module as a distribution would ship it: a kind, and the helper's send hook."""
    module = types.ModuleType("notifier_pager")

    def build(spec: ChannelSpec, context: BuildContext) -> Pager:
        return Pager(spec.name)

    @hookimpl
    def notifier_channel_kinds() -> list[ChannelKind]:
        return [ChannelKind("pager", build)]

    hooks = ChannelHooks(sends=(Pager,))
    module.notifier_channel_kinds = notifier_channel_kinds  # type: ignore[attr-defined]
    module.notifier_send = hooks.notifier_send  # type: ignore[attr-defined]
    return module


def test_a_plugin_module_binding_the_helpers_send_hook_delivers_through_a_dispatcher(
    tmp_path: Path,
):
    config = tmp_path / "app.toml"
    config.write_text('[channels.oncall]\nkind = "pager"\n', encoding="utf-8")
    host = PluginHost.from_plugins([pager_plugin()])
    assert host.problems == []  # the helper's hooks match the hookspecs
    with Dispatcher.from_config(config, host=host, env={}) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="disk full"))
        channel = dispatcher.channels["oncall"].channel
    assert receipt.ok and receipt.message_id == "oncall-1"
    assert channel.sent == ["disk full"]


def test_the_hooks_answer_none_for_channels_of_other_classes():
    hooks = ChannelHooks(sends=(Pager,), groups=(Chat,))
    delivery = DeliveryContext()
    assert hooks.notifier_send(channel=object(), alert=Alert("x"), delivery=delivery) is None
    assert hooks.notifier_create_group(channel=Pager("p"), group=GroupSpec("g")) is None
    assert hooks.notifier_get_group(channel=Pager("p"), chat_id="c1") is None
    assert hooks.notifier_update_group(Pager("p"), "c1", GroupUpdate(name="n")) is None


def test_each_plugin_answers_only_for_its_own_channels_whatever_the_order():
    class Other:
        def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
            return SendResult(message_id="other")

    for order in ((Pager, Other), (Other, Pager)):
        host = PluginHost.from_plugins([ChannelHooks(sends=(cls,)) for cls in order])
        mine = Pager("mine")
        assert host.send(mine, Alert("a"), DeliveryContext()).message_id == "mine-1"
        assert host.send(Other(), Alert("a"), DeliveryContext()).message_id == "other"
        host.close()


def test_a_channel_no_plugin_claims_is_unsupported():
    host = PluginHost.from_plugins([ChannelHooks(sends=(Chat,))])
    with pytest.raises(UnsupportedOperation, match="no plugin can send"):
        host.send(Pager("stray"), Alert("a"), DeliveryContext())


def test_the_group_hooks_answer_for_the_group_classes_only():
    host = PluginHost.from_plugins([ChannelHooks(sends=(Pager,), groups=(Chat,))])
    chat = Chat("chat")
    created = host.create_group(chat, GroupSpec("ops", members=("a", "b")))
    assert created.chat_id == "c1"
    assert host.get_group(chat, "c1").name == "ops"
    assert host.update_group(chat, "c1", GroupUpdate(name="db")).name == "db"
    assert host.send(chat, Alert("a"), DeliveryContext()).message_id == "chat-1"  # a subclass
    with pytest.raises(UnsupportedOperation, match="cannot create groups"):
        host.create_group(Pager("pager"), GroupSpec("ops"))


def test_an_error_from_the_channel_reaches_the_caller_unchanged():
    host = PluginHost.from_plugins([ChannelHooks(sends=(Pager,))])
    with pytest.raises(ProviderError, match="pager refused it") as caught:
        host.send(Pager("p", failing=True), Alert("a"), DeliveryContext())
    assert caught.value.retryable is True


def test_a_class_without_the_method_its_hooks_call_is_refused_when_declared():
    with pytest.raises(PluginError, match=r"Pager has no create_group\(\), get_group\(\)"):
        ChannelHooks(groups=(Pager,))
    with pytest.raises(PluginError, match=r"object has no send\(\)"):
        ChannelHooks(sends=(object,))
    with pytest.raises(PluginError, match="expected classes"):
        ChannelHooks(sends=(Pager("an instance"),))  # type: ignore[arg-type]


def test_a_single_class_may_be_given_without_a_tuple():
    assert ChannelHooks(sends=Pager).sends == (Pager,)  # type: ignore[arg-type]


def test_a_plugin_module_binding_the_helpers_kinds_hook_contributes_its_kinds(tmp_path: Path):
    def build(spec: ChannelSpec, context: BuildContext) -> Pager:
        return Pager(spec.name)

    module = types.ModuleType("notifier_pager")
    hooks = ChannelHooks(kinds=[ChannelKind("pager", build)], sends=(Pager,))
    module.notifier_channel_kinds = hooks.notifier_channel_kinds  # type: ignore[attr-defined]
    module.notifier_send = hooks.notifier_send  # type: ignore[attr-defined]
    config = tmp_path / "app.toml"
    config.write_text('[channels.oncall]\nkind = "pager"\n', encoding="utf-8")
    host = PluginHost.from_plugins([module])
    assert host.problems == []
    assert host.kinds["pager"].build is build
    with Dispatcher.from_config(config, host=host, env={}) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="disk full"))
    assert receipt.ok and receipt.message_id == "oncall-1"
