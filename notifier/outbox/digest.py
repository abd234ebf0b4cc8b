"""Digests: many waiting deliveries of one channel told in one message.

A channel whose rate limit holds a backlog (a robot allowed 20 messages a minute facing
an alert storm of 300) would take a quarter of an hour to tell its people one message
at a time. Past the channel's ``digest_threshold`` of waiting deliveries, the outbox
claims all of them and sends one digest instead: how many are firing and resolved, then
the alerts most severe first, then "and N more". The folded deliveries are recorded as
delivered by that digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from notifier.kinds import RateLimit
from notifier.models import SEVERITIES, Alert, Status

# A digest's text stays well inside every shipped provider's message limit (WeCom and
# DingTalk robots take 4,096 bytes of markdown, Feishu and Slack more), so it is sent as
# one message, using one send slot.
MAX_BYTES = 1_500
MAX_LINE = 120  # characters of one alert's line
# Per-minute limits fold a backlog of half the window's messages.
PER_MINUTE = 60.0


def default_threshold(limit: RateLimit | None) -> int:
    """The digest threshold of a channel that does not set one: on for kinds limited
    per minute or slower (half their window's messages, at least 2), off otherwise."""
    if limit is None or limit.per < PER_MINUTE:
        return 0
    return max(2, limit.count // 2)


def _line(alert: Alert) -> str:
    title = " ".join(alert.title.split())
    text = f"[{alert.severity}] {alert.status.value}: {title}"
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def build(channel: str, alerts: Sequence[Alert]) -> Alert:
    """One alert telling ``alerts`` (in the order written; a later status of the same
    fingerprint replaces an earlier one, so a resolution follows its firing)."""
    latest: dict[str, Alert] = {}
    for alert in alerts:
        latest.pop(alert.fingerprint, None)  # re-inserted: keeps the order of the last
        latest[alert.fingerprint] = alert
    told = list(latest.values())
    firing = [a for a in told if a.status is Status.FIRING]
    resolved = len(told) - len(firing)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    # Firing before resolved, most severe first; the order written breaks ties.
    ordered = sorted(
        enumerate(told), key=lambda p: (p[1].status is not Status.FIRING, rank[p[1].severity], p[0])
    )
    lines: list[str] = []
    used = 0
    for n, (_, alert) in enumerate(ordered):
        line = _line(alert)
        size = len(line.encode()) + 1
        rest = len(ordered) - n
        # Room is kept for the "and N more" line whenever alerts are left after this one.
        reserve = 0 if rest == 1 else len(f"and {rest} more".encode()) + 1
        if used + size + reserve > MAX_BYTES:
            lines.append(f"and {rest} more")
            break
        lines.append(line)
        used += size
    key = hashlib.sha256("\n".join(sorted(latest)).encode()).hexdigest()[:16]
    severity = min((a.severity for a in firing), key=rank.__getitem__, default="info")
    return Alert(
        title=f"{len(told)} alerts on {channel}: {len(firing)} firing, {resolved} resolved",
        body="\n".join(lines),
        severity=severity,
        status=Status.FIRING if firing else Status.RESOLVED,
        fingerprint=f"digest-{key}",
        labels={"notifier_digest": str(len(told))},
        source="notifier digest",
    )
