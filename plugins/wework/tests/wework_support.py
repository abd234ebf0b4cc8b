"""Constants and helpers the WeWork tests import (conftest modules are not importable
by name once several test directories have one)."""

from __future__ import annotations

from datetime import UTC, datetime

from notifier_wework.kinds import KINDS

from notifier.models import Alert

KIND = {kind.name: kind for kind in KINDS}
GATEWAY_SECRET = "fake-gateway-secret-0001"
STARTED = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def make_alert(title="磁盘将满", **fields) -> Alert:
    """An alert with a fixed start time, so renderings are stable across retries."""
    fields.setdefault("starts_at", STARTED)
    return Alert(title=title, **fields)
