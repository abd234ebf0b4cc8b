"""Sample alerts for channel tests: an ordinary one and one far over any byte limit.

Both carry Chinese text and the alert parts every channel renders (labels, annotations,
links), so a test sees what a real alert looks like on the provider's side.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from notifier.models import Alert, Link, Status
from notifier.render import byte_len

__all__ = ["huge_alert", "resolved", "sample_alert"]


def sample_alert() -> Alert:
    """A firing critical alert with labels, annotations and a link."""
    return Alert(
        title="数据库主库磁盘使用率过高",
        body="db-main-01 的 /data 分区使用率 93%, 预计 2 小时内写满。",
        severity="critical",
        labels={"service": "orders-db", "env": "prod", "region": "cn-north-1"},
        annotations={"summary": "磁盘即将写满", "runbook_url": "https://runbooks.example/disk"},
        links=[Link("https://grafana.example/d/disk", "Dashboard")],
        starts_at=datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
    )


def resolved(alert: Alert, after: timedelta = timedelta(minutes=42)) -> Alert:
    """``alert`` resolved ``after`` its start."""
    return attrs.evolve(alert, status=Status.RESOLVED, ends_at=alert.starts_at + after)


def huge_alert(at_least: int) -> Alert:
    """An alert whose body alone is ``at_least`` UTF-8 bytes of Chinese, emoji, flags and
    zero-width-joiner sequences: the text that breaks naive truncation."""
    unit = "磁盘写满了 ⚠️🔥 运维值班请处理 👨‍👩‍👧‍👦🇨🇳 第{}行\n"
    lines: list[str] = []
    size = 0
    while size < at_least:
        lines.append(unit.format(len(lines)))
        size += byte_len(lines[-1])
    return attrs.evolve(sample_alert(), title="巨大的告警 🔥" * 20, body="".join(lines))
