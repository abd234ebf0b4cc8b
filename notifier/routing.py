"""Routes: which channels an alert goes to.

Routes are tried in order and the first match wins, unless it says ``continue = true``.
A route matches when every matcher it has matches: ``severity`` (a list), ``labels``
(exact values; ``"*"`` means "present with any value"), ``status``. A route without
matchers matches everything, so it serves as the default route. With no routes at all,
every alert goes to every channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from notifier.mentions import label_mentions
from notifier.models import SEVERITIES, Alert, Status

if TYPE_CHECKING:
    from notifier.templates import MessageTemplate
    from notifier.values import Issues

ROUTE_KEYS = (
    "name", "channels", "severity", "labels", "status", "continue", "mentions",
    "template", "mention_labels",
)  # fmt: skip


@attrs.frozen
class Route:
    channels: tuple[str, ...]
    severity: frozenset[str] = frozenset()
    labels: Mapping[str, str] = attrs.field(factory=dict)
    status: Status | None = None
    continue_: bool = False
    mentions: tuple[str, ...] = ()
    name: str = ""
    template: MessageTemplate | None = attrs.field(default=None, eq=False)
    mention_labels: tuple[str, ...] = ()

    def matches(self, alert: Alert) -> bool:
        if self.severity and alert.severity not in self.severity:
            return False
        if self.status is not None and alert.status is not self.status:
            return False
        for key, want in self.labels.items():
            have = alert.labels.get(key)
            if have is None or (want != "*" and have != want):
                return False
        return True


@attrs.frozen
class Target:
    """One channel an alert goes to, with the mentions of every route that chose it
    (their ``mentions`` and the alert's ``mention_labels`` values) and the template of the
    first of them that has one."""

    channel: str
    mentions: tuple[str, ...] = ()
    template: MessageTemplate | None = attrs.field(default=None, eq=False)


def resolve(routes: Iterable[Route], channels: Iterable[str], alert: Alert) -> list[Target]:
    """The channels ``alert`` goes to, each once, in route order."""
    routes = tuple(routes)
    if not routes:
        return [Target(name) for name in channels]
    chosen: dict[str, list[str]] = {}
    templates: dict[str, MessageTemplate] = {}
    for route in routes:
        if not route.matches(alert):
            continue
        wanted = (*route.mentions, *label_mentions(alert.labels, route.mention_labels))
        for name in route.channels:
            mentions = chosen.setdefault(name, [])
            mentions.extend(m for m in wanted if m not in mentions)
            if route.template is not None:
                templates.setdefault(name, route.template)
        if not route.continue_:
            break
    return [Target(name, tuple(mentions), templates.get(name)) for name, mentions in chosen.items()]


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def parse_template_keys(
    table: Mapping[str, Any], where: str, issues: Issues, base_dir: Path
) -> tuple[MessageTemplate | None, tuple[str, ...]]:
    """A channel's or route's ``template`` and ``mention_labels``."""
    from notifier.templates import parse_template

    template = None
    if "template" in table:
        template = parse_template(table["template"], f"{where}.template", issues, base_dir)
    labels = _strings(table.get("mention_labels", []))
    if labels is None or isinstance(table.get("mention_labels"), str):
        issues.add(f"{where}.mention_labels", 'a list of label names, such as ["owner"]')
        labels = []
    return template, tuple(labels)


def parse_routes(
    raw: Any, channels: Mapping[str, Any], issues: Issues, *, base_dir: Path | None = None
) -> tuple[Route, ...]:
    if not isinstance(raw, list):
        issues.add("routes", "an array of tables ([[routes]])")
        return ()
    routes = []
    for index, table in enumerate(raw):
        where = f"routes[{index}]"
        if not isinstance(table, Mapping):
            issues.add(where, "a table ([[routes]])")
            continue
        route = _route(table, where, channels, issues, base_dir or Path("."))
        if route is not None:
            routes.append(route)
    return tuple(routes)


def _route(
    table: Mapping[str, Any],
    where: str,
    channels: Mapping[str, Any],
    issues: Issues,
    base_dir: Path,
) -> Route | None:
    before = len(issues.found)
    for key in table:
        if key not in ROUTE_KEYS:
            issues.add(
                f"{where}.{key}", f"no such route key; expected one of {', '.join(ROUTE_KEYS)}"
            )
    names = _strings(table.get("channels"))
    if not names:
        issues.add(f"{where}.channels", "a non-empty list of channel names")
        names = []
    for i, name in enumerate(names):
        if name not in channels:
            defined = ", ".join(sorted(channels)) or "none"
            issues.add(
                f"{where}.channels[{i}]",
                f"a channel defined under [channels], got {name!r} (defined: {defined})",
            )
    severity = _strings(table.get("severity", []))
    if severity is None or any(s not in SEVERITIES for s in severity):
        issues.add(f"{where}.severity", f"a list of severities from {', '.join(SEVERITIES)}")
        severity = []
    labels = table.get("labels", {})
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        issues.add(f"{where}.labels", 'a table of label = "value" strings')
        labels = {}
    status = table.get("status")
    if status is not None and status not in ("firing", "resolved"):
        issues.add(f"{where}.status", "'firing' or 'resolved'")
        status = None
    cont = table.get("continue", False)
    if not isinstance(cont, bool):
        issues.add(f"{where}.continue", "true or false")
    mentions = _strings(table.get("mentions", []))
    if mentions is None:
        issues.add(f"{where}.mentions", 'a list of user ids, mobiles or "@all"')
        mentions = []
    name = table.get("name", "")
    if not isinstance(name, str):
        issues.add(f"{where}.name", "a string")
    template, mention_labels = parse_template_keys(table, where, issues, base_dir)
    if len(issues.found) > before:
        return None
    return Route(
        channels=tuple(names),
        severity=frozenset(severity),
        labels=dict(labels),
        status=Status(status) if status else None,
        continue_=cont,
        mentions=tuple(mentions),
        name=name,
        template=template,
        mention_labels=mention_labels,
    )
