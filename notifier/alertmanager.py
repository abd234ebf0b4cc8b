"""Alertmanager webhook notifications (version 4) as :class:`~notifier.groups.AlertGroup`.

Alertmanager POSTs one JSON document per notification: the group's ``status``,
``receiver``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``, ``externalURL``,
``groupKey``, ``truncatedAlerts`` and its ``alerts``. Each alert becomes an
:class:`~notifier.models.Alert`: the ``summary`` annotation is its title (else
``alertname``), ``description`` its body, the ``severity`` label its severity (unknown
values count as ``warning``), ``generatorURL`` its first link. An ``endsAt`` of
``0001-01-01T00:00:00Z`` means "not ended".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from notifier.groups import AlertGroup
from notifier.models import SEVERITIES, Alert, Link, Status

__all__ = ["NOT_ENDED", "alert_from_alertmanager", "parse_notification"]

NOT_ENDED = "0001-01-01T00:00:00Z"
SOURCE = "alertmanager"


def _strings(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}{key}: expected an object of strings, got {type(value).__name__}")
    try:  # text to text, as Alertmanager sends: join takes nothing else
        "".join([*value, *value.values()])
    except TypeError:
        return {str(k): str(v) for k, v in value.items()}
    return dict(value)


def _status(value: Any, where: str) -> Status:
    if value not in ("firing", "resolved"):
        raise ValueError(f"{where}status: expected 'firing' or 'resolved', got {value!r}")
    return Status(value)


def _ended(value: Any) -> str | None:
    if not value or str(value).startswith("0001-01-01"):
        return None
    return str(value)


def alert_from_alertmanager(data: Mapping[str, Any], where: str = "") -> Alert:
    """One entry of a notification's ``alerts`` as an alert."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where or 'alert'}: expected an object, got {type(data).__name__}")
    labels = _strings(data, "labels", where)
    annotations = _strings(data, "annotations", where)
    title = annotations.get("summary") or labels.get("alertname") or "alert"
    severity = labels.get("severity", "warning").lower()
    generator = data.get("generatorURL")
    # The fields are written out twice on purpose: built once into a dict and unpacked
    # into each call, an alert costs a sixth more to read.
    quick = _usual(data, labels, annotations, title, severity, generator, where)
    if quick is not None:
        return quick
    # Alertmanager always sends startsAt; without one the alert starts now.
    started: dict[str, Any] = {"starts_at": data["startsAt"]} if data.get("startsAt") else {}
    try:
        return Alert(
            title=title,
            body=annotations.get("description", ""),
            severity=severity if severity in SEVERITIES else "warning",
            labels=labels,
            annotations=annotations,
            status=_status(data.get("status"), where),
            fingerprint=str(data.get("fingerprint") or ""),
            ends_at=_ended(data.get("endsAt")),
            links=(Link(str(generator), "Source"),) if generator else (),
            source=SOURCE,
            **started,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}{exc}") from None


def _usual(
    data: Mapping[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    title: str,
    severity: str,
    generator: Any,
    where: str,
) -> Alert | None:
    """The alert of an entry as Alertmanager writes it (text that encodes, a fingerprint,
    UTC times), each field checked once; ``None`` for anything else, which ``Alert(...)``
    checks (and explains) field by field."""
    fingerprint = data.get("fingerprint")
    started = data.get("startsAt")
    if not fingerprint or type(fingerprint) is not str or type(started) is not str:
        return None
    if not title.strip():
        return None
    try:
        texts = [*labels, *labels.values(), *annotations, *annotations.values(), fingerprint]
        "\x00".join(texts).encode()
        ended = _ended(data.get("endsAt"))
        return Alert.from_checked(
            title=title,
            body=annotations.get("description", ""),
            severity=severity if severity in SEVERITIES else "warning",
            labels=labels,
            annotations=annotations,
            status=_status(data.get("status"), where),
            fingerprint=fingerprint,
            starts_at=_utc(started),
            ends_at=None if ended is None else _utc(ended),
            links=(Link(str(generator), "Source"),) if generator else (),
            source=SOURCE,
        )
    except (TypeError, ValueError):  # a UnicodeEncodeError too
        return None


def _utc(text: str) -> datetime:
    """A time written in UTC, as Alertmanager writes them; ValueError for any other."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is not UTC:
        raise ValueError(f"not a UTC time: {text!r}")
    return parsed


def parse_notification(data: Any) -> AlertGroup:
    """A whole notification as a group; a clear :class:`ValueError` naming the bad field."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a notification is a JSON object, got {type(data).__name__}")
    version = data.get("version", "4")
    if str(version) != "4":
        raise ValueError(f'version: expected "4" (Alertmanager\'s webhook format), got {version!r}')
    raw = data.get("alerts")
    if not isinstance(raw, list) or not raw:
        raise ValueError("alerts: expected a non-empty array of alerts")
    alerts = tuple(alert_from_alertmanager(a, f"alerts[{i}].") for i, a in enumerate(raw))
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise ValueError(f"truncatedAlerts: expected a count, got {truncated!r}")
    return AlertGroup(
        alerts,
        status=_status(data.get("status"), ""),
        receiver=str(data.get("receiver", "")),
        group_labels=_strings(data, "groupLabels", ""),
        common_labels=_strings(data, "commonLabels", ""),
        common_annotations=_strings(data, "commonAnnotations", ""),
        external_url=str(data.get("externalURL", "")),
        group_key=str(data.get("groupKey", "")),
        truncated_alerts=truncated,
    )
