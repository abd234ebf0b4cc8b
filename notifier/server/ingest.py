"""What a request to ``notifier serve`` becomes: outbox deliveries.

An Alertmanager notification becomes **one delivery per channel**: routes are matched
per alert, and the alerts that reach the same channel travel as one message with the
group of them (:mod:`notifier.messages`), or as several when one would be over the
channel's provider limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from notifier.alertmanager import parse_notification
from notifier.groups import AlertGroup
from notifier.mentions import merge
from notifier.messages import RECEIVER_LABEL, Budgets, messages
from notifier.models import Alert
from notifier.outbox.records import NewDelivery
from notifier.routing import Target

if TYPE_CHECKING:
    from notifier.dispatcher import Dispatcher

__all__ = ["alert_deliveries", "notification_deliveries", "parse_alerts"]


def _routed(alert: Alert, receiver: str) -> Alert:
    if not receiver:
        return alert
    return attrs.evolve(alert, labels={**alert.labels, RECEIVER_LABEL: receiver})


def notification_deliveries(
    dispatcher: Dispatcher, budgets: Budgets, group: AlertGroup, channel: str | None = None
) -> list[NewDelivery]:
    """The deliveries of one notification: per channel, its alerts as one message (or
    several, cut at alert boundaries when over the provider's limit)."""
    per_channel: dict[str, tuple[list[Alert], list[tuple[str, ...]]]] = {}
    for alert in group.alerts:
        if channel is not None:
            targets = [Target(channel)]
        elif budgets.by_receiver:
            targets = dispatcher.targets(_routed(alert, group.receiver))
        else:
            targets = dispatcher.targets(alert)
        for target in targets:
            alerts, mentions = per_channel.setdefault(target.channel, ([], []))
            alerts.append(alert)
            mentions.append(target.mentions)
    deliveries = []
    for name, (alerts, mentions) in per_channel.items():
        merged = merge((), *mentions)  # every message of the channel mentions them all
        kept = budgets.needs_group(name)
        for message, told in messages(group, tuple(alerts), budgets(name)):
            deliveries.append(NewDelivery(message, name, merged, group=told if kept else None))
    return deliveries


def parse_alerts(data: Any) -> list[Alert]:
    """One alert or an array of them, as ``notifier send`` reads them."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ValueError("expected an alert or a non-empty array of alerts")
    alerts = []
    for index, item in enumerate(items):
        try:
            alerts.append(Alert.from_dict(item))
        except (TypeError, ValueError) as exc:
            where = f"alert {index}: " if isinstance(data, list) else ""
            raise ValueError(f"{where}{exc}") from None
    return alerts


def alert_deliveries(dispatcher: Dispatcher, alerts: Iterable[Alert]) -> list[NewDelivery]:
    return [
        NewDelivery(alert, t.channel, t.mentions)
        for alert in alerts
        for t in dispatcher.targets(alert)
    ]


def parse_group(data: Any) -> AlertGroup:
    """An Alertmanager (or Grafana) notification; ValueError naming what is wrong."""
    try:
        return parse_notification(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()
