"""Alertmanager webhook notifications (version 4) as Alertmanager posts them."""

from __future__ import annotations

from typing import Any

ZERO = "0001-01-01T00:00:00Z"


def am_alert(n: int, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": f"host-{n}", "severity": "critical",
                   **labels},
        "annotations": {"summary": f"Disk full on host-{n}", "description": "99% used",
                        "runbook": "https://runbooks.example/disk"},
        "startsAt": "2026-12-01T10:00:00Z",
        "endsAt": ZERO if status == "firing" else "2026-12-01T11:00:00Z",
        "generatorURL": f"http://prometheus:9090/graph?g0.expr=disk{n}",
        "fingerprint": f"{n:016x}",
    }  # fmt: skip


def notification(
    alerts: list[dict[str, Any]], *, receiver: str = "team", group_key: str = "{}:{}"
) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }
