"""The plugin host: finds plugins, collects their channel kinds, calls their hooks.

:meth:`PluginHost.load` is the factory (nothing loads at import time). It registers the
built-in channels as ordinary plugins, loads every ``notifier`` entry point one by one
(a plugin that fails to import is recorded and skipped), drops plugins named in
``NOTIFIER_DISABLE_PLUGINS``, drops and records any plugin implementing a hook that does
not exist, then calls ``check_pending()``. The rest of the code calls hooks only through
this class's typed methods, never ``pm.hook`` directly.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from functools import cached_property
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

import attrs
import pluggy

from notifier import hookspecs
from notifier.errors import DuplicateKindError, PluginError, UnsupportedOperation
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec
from notifier.models import (
    Alert,
    DeliveryContext,
    GroupInfo,
    GroupSpec,
    GroupUpdate,
    Receipt,
    SendResult,
)
from notifier.redact import scrub_exception

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "notifier"
DISABLE_ENV = "NOTIFIER_DISABLE_PLUGINS"
CORE_DIST = "notifier-core"  # the distribution; the import package is `notifier`
BUILTINS = (
    "notifier.builtins.console",
    "notifier.builtins.jsonl",
    "notifier.builtins.webhook",
)


@attrs.frozen
class PluginRecord:
    """One plugin the host saw, and what became of it.

    :param status: ``loaded``, ``disabled`` or ``failed``.
    """

    name: str
    dist: str
    status: str = "loaded"
    error: str = ""


def disabled_names(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """Plugin or distribution names listed in ``NOTIFIER_DISABLE_PLUGINS``."""
    raw = (os.environ if env is None else env).get(DISABLE_ENV, "")
    return frozenset(n.strip() for n in raw.replace(";", ",").split(",") if n.strip())


class PluginHost:
    """A pluggy plugin manager with typed hook calls and per-plugin isolation."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self._dists: dict[int, str] = {}

    # -- construction ---------------------------------------------------------------

    @classmethod
    def load(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        extra: Iterable[Any] = (),
    ) -> PluginHost:
        """Built-ins, then every installed ``notifier`` entry point, then ``extra``."""
        host = cls()
        disabled = disabled_names(env)
        host._register_builtins(disabled)
        for ep in _entry_points():
            host._load_entry_point(ep, disabled)
        for plugin in extra:
            host.register(plugin)
        host._check()
        return host

    @classmethod
    def from_plugins(cls, plugins: Iterable[Any], *, builtins: bool = True) -> PluginHost:
        """Only the given plugins (modules or objects) and, by default, the built-ins."""
        host = cls()
        if builtins:
            host._register_builtins(frozenset())
        for plugin in plugins:
            host.register(plugin)
        host._check()
        return host

    def register(self, plugin: Any, *, name: str | None = None, dist: str = "") -> None:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if self.pm.has_plugin(name):  # a second instance of one plugin class
            name = f"{name}-{id(plugin):x}"
        dist = dist or name.split(".")[0]
        self.pm.register(plugin, name=name)
        self._dists[id(plugin)] = dist
        self.records.append(PluginRecord(name, dist))

    def _register_builtins(self, disabled: frozenset[str]) -> None:
        for module_name in BUILTINS:
            short = module_name.rsplit(".", 1)[1]
            if short in disabled:
                self.records.append(PluginRecord(short, CORE_DIST, "disabled"))
                continue
            self.register(importlib.import_module(module_name), name=short, dist=CORE_DIST)

    def _load_entry_point(self, ep: EntryPoint, disabled: frozenset[str]) -> None:
        dist = ep.dist.name if ep.dist is not None else ep.value.split(".")[0]
        if ep.name in disabled or dist in disabled:
            self.records.append(PluginRecord(ep.name, dist, "disabled"))
            log.info("plugin %s (%s) disabled by %s", ep.name, dist, DISABLE_ENV)
            return
        if self.pm.has_plugin(ep.name):
            self.records.append(
                PluginRecord(ep.name, dist, "failed", "a plugin of this name is already loaded")
            )
            return
        try:
            plugin = ep.load()
            self.register(plugin, name=ep.name, dist=dist)
        except Exception as exc:  # a broken plugin must not take the others down
            scrub_exception(exc)
            error = f"{type(exc).__name__}: {exc}"
            self.records.append(PluginRecord(ep.name, dist, "failed", error))
            log.warning("plugin %s (%s) failed to load and was skipped: %s", ep.name, dist, error)

    def _check(self) -> None:
        # A misspelled hook fails loudly, but only takes its own plugin down.
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                plugin = exc.plugin
                name = self.pm.get_name(plugin) or repr(plugin)
                dist = self._dists.get(id(plugin), name)
                self.pm.unregister(plugin)
                self.records = [r for r in self.records if r.name != name]
                self.records.append(PluginRecord(name, dist, "failed", str(exc)))
                log.warning("plugin %s (%s) was skipped: %s", name, dist, exc)

    # -- discovery ------------------------------------------------------------------

    @property
    def problems(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status == "failed"]

    def dist_of(self, plugin: Any) -> str:
        return self._dists.get(id(plugin), self.pm.get_name(plugin) or "?")

    @cached_property
    def kinds(self) -> dict[str, ChannelKind]:
        """Every channel kind, by name, each tagged with the distribution providing it.

        :raises DuplicateKindError: two plugins claim one name.
        """
        kinds: dict[str, ChannelKind] = {}
        # Call each plugin on its own: one raising must not hide the others' kinds.
        for impl in reversed(self.pm.hook.notifier_channel_kinds.get_hookimpls()):
            dist = self.dist_of(impl.plugin)
            try:
                # pluggy types an implementation as returning object; the spec says a list.
                contributed = list(cast("Iterable[object]", impl.function() or ()))
            except Exception as exc:
                scrub_exception(exc)
                self.records.append(
                    PluginRecord(impl.plugin_name, dist, "failed", f"channel kinds: {exc}")
                )
                log.warning("plugin %s could not list its channel kinds: %s", dist, exc)
                continue
            for kind in contributed:
                if not isinstance(kind, ChannelKind):
                    raise PluginError(
                        f"plugin {dist!r} returned {type(kind).__name__} from "
                        "notifier_channel_kinds; expected ChannelKind records"
                    )
                if kind.name in kinds:
                    raise DuplicateKindError(kind.name, kinds[kind.name].plugin, dist)
                kinds[kind.name] = attrs.evolve(kind, plugin=dist)
        return kinds

    # -- channel operations -----------------------------------------------------------

    def build_channel(self, spec: ChannelSpec, context: BuildContext) -> Any:
        return self.kinds[spec.kind].build(spec, context)

    def send(self, channel: Any, alert: Alert, delivery: DeliveryContext) -> SendResult:
        result: SendResult | None = self.pm.hook.notifier_send(
            channel=channel, alert=alert, delivery=delivery
        )
        if result is None:
            raise UnsupportedOperation(f"no plugin can send through {_describe(channel)}")
        return result

    def create_group(self, channel: Any, group: GroupSpec) -> GroupInfo:
        return self._group_call("create groups", channel, group=group)

    def get_group(self, channel: Any, chat_id: str) -> GroupInfo:
        return self._group_call("read groups", channel, chat_id=chat_id)

    def update_group(self, channel: Any, chat_id: str, update: GroupUpdate) -> GroupInfo:
        return self._group_call("update groups", channel, chat_id=chat_id, update=update)

    def _group_call(self, what: str, channel: Any, **kwargs: Any) -> GroupInfo:
        hook = {
            "create groups": self.pm.hook.notifier_create_group,
            "read groups": self.pm.hook.notifier_get_group,
            "update groups": self.pm.hook.notifier_update_group,
        }[what]
        result: GroupInfo | None = hook(channel=channel, **kwargs)
        if result is None:
            raise UnsupportedOperation(f"{_describe(channel)} cannot {what}")
        return result

    # -- observation ------------------------------------------------------------------

    @property
    def observes_http(self) -> bool:
        return bool(self.pm.hook.notifier_http_request.get_hookimpls())

    @property
    def observes_deliveries(self) -> bool:
        return bool(self.pm.hook.notifier_delivery_finished.get_hookimpls())

    def http_request(self, event: Any) -> None:
        self._observe(self.pm.hook.notifier_http_request, event=event)

    def delivery_finished(self, alert: Alert, receipt: Receipt) -> None:
        self._observe(self.pm.hook.notifier_delivery_finished, alert=alert, receipt=receipt)

    @staticmethod
    def _observe(hook: Any, **kwargs: Any) -> None:
        # Observers are called one by one so a failing one cannot silence the rest.
        for impl in hook.get_hookimpls():
            try:
                impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception:
                log.exception("observer %s failed", impl.plugin_name)

    def close(self) -> None:
        for plugin in list(self.pm.get_plugins()):
            self.pm.unregister(plugin)


def _describe(channel: Any) -> str:
    name = getattr(channel, "name", None)
    kind = getattr(channel, "kind", None)
    if name and kind:
        return f"channel {name!r} (kind {kind!r})"
    return f"a {type(channel).__name__} channel"


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
