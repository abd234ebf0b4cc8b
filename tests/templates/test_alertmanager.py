"""Alertmanager webhook notifications (version 4) as alert groups."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from notifier.alertmanager import parse_notification
from notifier.models import Status


def _notification(**changes) -> dict:
    data = {
        "version": "4",
        "status": "firing",
        "receiver": "ops",
        "groupKey": '{}:{alertname="DiskFull"}',
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "team": "db"},
        "commonAnnotations": {"runbook_url": "https://runbooks/disk"},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 2,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "team": "db", "severity": "critical"},
                "annotations": {"summary": "disk full on db-1", "description": "/data at 97%"},
                "startsAt": "2026-01-01T00:30:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph?g0.expr=x",
                "fingerprint": "c0ffee",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "DiskFull", "team": "db", "severity": "page"},
                "annotations": {},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "2026-01-01T00:20:00Z",
                "fingerprint": "beef",
            },
        ],
    }
    data.update(changes)
    return data


def test_a_notification_becomes_a_group_with_every_field() -> None:
    group = parse_notification(_notification())
    assert group.status is Status.FIRING and group.receiver == "ops"
    assert group.group_labels == {"alertname": "DiskFull"}
    assert group.common_labels == {"alertname": "DiskFull", "team": "db"}
    assert group.common_annotations == {"runbook_url": "https://runbooks/disk"}
    assert group.external_url == "http://alertmanager:9093"
    assert group.group_key == '{}:{alertname="DiskFull"}' and group.truncated_alerts == 2
    first, second = group.alerts
    assert (first.title, first.body, first.severity) == (
        "disk full on db-1",
        "/data at 97%",
        "critical",
    )
    assert first.fingerprint == "c0ffee" and first.ends_at is None  # 0001-01-01: not ended
    assert first.starts_at == datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert first.links[0].url == "http://prometheus/graph?g0.expr=x"
    assert first.source == "alertmanager"
    # No summary: the alertname is the title; an unknown severity counts as warning.
    assert (second.title, second.severity, second.resolved) == ("DiskFull", "warning", True)
    assert second.ends_at == datetime(2026, 1, 1, 0, 20, tzinfo=UTC)
    assert group.counts == {"firing": 1, "resolved": 1, "total": 2}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": "3"}, 'version: expected "4"'),
        ({"alerts": []}, "alerts: expected a non-empty array"),
        ({"status": "pending"}, "status: expected 'firing' or 'resolved'"),
        ({"commonLabels": ["a"]}, "commonLabels: expected an object of strings"),
        ({"truncatedAlerts": -1}, "truncatedAlerts: expected a count"),
        ({"alerts": [{"status": "firing", "startsAt": "yesterday"}]}, "alerts[0]."),
        ({"alerts": [{"status": "gone"}]}, "alerts[0].status: expected"),
    ],
)
def test_a_bad_notification_names_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_notification(_notification(**changes))
