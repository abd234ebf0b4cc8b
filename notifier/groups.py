"""A group of alerts delivered as one message: an Alertmanager notification, a digest.

:class:`AlertGroup` holds the alerts and what they share (common labels and annotations,
the labels they were grouped by); templates see it as ``group``. A lone alert is a group
of one (:meth:`AlertGroup.of`), so every template can use ``group`` whatever it renders.
:meth:`AlertGroup.summary` is one alert that stands for the whole group (its status, worst
severity and common labels), as template checks render it; the messages ``notifier
serve`` sends for a notification are :mod:`notifier.messages`'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from notifier.models import SEVERITIES, Alert, Status

__all__ = ["AlertGroup", "common"]


def _alerts(value: Iterable[Alert]) -> tuple[Alert, ...]:
    alerts = tuple(value)
    if not alerts:
        raise ValueError("a group needs at least one alert")
    return alerts


def common(maps: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The ``key = value`` pairs every one of ``maps`` has."""
    maps = list(maps)
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


@attrs.frozen
class AlertGroup:
    """Several alerts in one message.

    :param status: ``firing`` while any alert fires, else ``resolved``; computed from the
        alerts unless given (Alertmanager says it explicitly). So are ``common_labels``
        and ``common_annotations``.
    :param group_labels: the labels the alerts were grouped by.
    :param truncated_alerts: alerts the sender left out of ``alerts`` (Alertmanager's
        ``max_alerts``).
    """

    alerts: tuple[Alert, ...] = attrs.field(converter=_alerts)
    status: Status = attrs.field(
        default=attrs.Factory(
            lambda self: Status.FIRING if self.firing else Status.RESOLVED, takes_self=True
        )
    )
    receiver: str = ""
    group_labels: Mapping[str, str] = attrs.field(factory=dict)
    common_labels: Mapping[str, str] = attrs.field(
        default=attrs.Factory(lambda self: common(a.labels for a in self.alerts), takes_self=True)
    )
    common_annotations: Mapping[str, str] = attrs.field(
        default=attrs.Factory(
            lambda self: common(a.annotations for a in self.alerts), takes_self=True
        )
    )
    external_url: str = ""
    group_key: str = ""
    truncated_alerts: int = 0

    @classmethod
    def of(cls, alert: Alert) -> AlertGroup:
        """A group of one."""
        return cls((alert,))

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if not a.resolved)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.resolved)

    @property
    def counts(self) -> dict[str, int]:
        """``{"firing": n, "resolved": m, "total": n + m}`` (truncated alerts not counted)."""
        firing = len(self.firing)
        return {"firing": firing, "resolved": len(self.alerts) - firing, "total": len(self.alerts)}

    def summary(self) -> Alert:
        """The alert that stands for the group: routed, deduplicated and rendered (without a
        template) like any other. A group of one is that alert itself."""
        if len(self.alerts) == 1:
            return self.alerts[0]
        worst = min(self.alerts, key=lambda a: SEVERITIES.index(a.severity)).severity
        counts = self.counts
        labels = dict(self.common_labels)
        name = labels.get("alertname") or self.alerts[0].title
        described = ", ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()))
        title = f"{name} ({counts['firing']} firing, {counts['resolved']} resolved)"
        if described:
            title += f" {described}"
        body = "\n".join(
            f"{'[RESOLVED]' if a.resolved else '[FIRING]'} {a.title}" for a in self.alerts
        )
        key = self.group_key or "\x1f".join(sorted(a.fingerprint for a in self.alerts))
        return Alert(
            title=title,
            body=body,
            severity=worst,
            labels=labels,
            annotations=dict(self.common_annotations),
            status=self.status,
            fingerprint="group-" + hashlib.sha256(key.encode()).hexdigest()[:16],
            starts_at=min(a.starts_at for a in self.alerts),
            source=self.alerts[0].source,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertGroup:
        """The group :meth:`to_dict` wrote.

        :raises ValueError: ``data`` is not such a group (``InvalidAlert`` for its alerts).
        """
        try:
            return cls(
                tuple(Alert.from_dict(a) for a in data["alerts"]),
                status=Status(data["status"]),
                receiver=str(data["receiver"]),
                group_labels=dict(data["group_labels"]),
                common_labels=dict(data["common_labels"]),
                common_annotations=dict(data["common_annotations"]),
                external_url=str(data["external_url"]),
                group_key=str(data["group_key"]),
                truncated_alerts=int(data["truncated_alerts"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a group of alerts: {exc!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "receiver": self.receiver,
            "group_labels": dict(self.group_labels),
            "common_labels": dict(self.common_labels),
            "common_annotations": dict(self.common_annotations),
            "external_url": self.external_url,
            "group_key": self.group_key,
            "truncated_alerts": self.truncated_alerts,
            "alerts": [a.to_dict() for a in self.alerts],
        }
