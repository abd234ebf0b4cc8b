"""What may stop a channel from being claimed now: its lane lease, a provider's block,
its circuit, its rate limit. Shared by claiming and by the scheduler's wake-up times.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import attrs

from notifier.kinds import RateLimit
from notifier.outbox.policy import CircuitBreaker, CircuitState
from notifier.ratelimit import window

_WINDOW = "SELECT at FROM sends WHERE channel = ? AND at > ? ORDER BY at"


@attrs.frozen
class Gate:
    """Whether a channel may be claimed now: ``admit`` deliveries (``None``: no limit)."""

    admit: int | None
    ready_at: float
    reason: str  # ready | leased | blocked | circuit | rate_limit


@attrs.frozen
class Wake:
    """When a channel with queued work can next be claimed, and why not before."""

    channel: str
    head_due_at: float
    ready_at: float
    reason: str


def slots(
    conn: sqlite3.Connection, channel: str, now: float, limit: RateLimit | None
) -> tuple[int | None, float]:
    """Free send slots of ``channel`` under ``limit`` now, and seconds until one frees.

    ``(None, 0.0)`` when the channel has no limit. Never more than ``limit.count`` sends
    start in any window of ``limit.per`` seconds.
    """
    if limit is None:
        return None, 0.0
    span = window(limit)
    times = [row[0] for row in conn.execute(_WINDOW, (channel, now - span))]
    free = limit.count - len(times)
    if free > 0:
        return free, 0.0
    return 0, times[len(times) - limit.count] + span - now


def gate(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    now: float,
    limit: RateLimit | None,
    breaker: CircuitBreaker | None,
    claimer: str | None = None,
) -> Gate:
    """What stops claiming a channel now, from its ``channels`` row and send log.

    :param claimer: who would claim. The lane's holder may claim more of the channel
        while its circuit is closed: a send that hangs holds back its own alert only,
        not the channel (the claim skips deliveries the holder has in flight).
    """
    name, blocked_until, circuit, failures, open_until, owner, lease_expires = row
    if owner and lease_expires > now and (owner != claimer or circuit != "closed"):
        return Gate(0, lease_expires, "leased")
    if blocked_until > now:
        return Gate(0, blocked_until, "blocked")
    admit = None
    if breaker is not None:
        admit = breaker.admits(CircuitState(circuit, failures, open_until), now)
        if admit == 0:
            return Gate(0, open_until, "circuit")
    free, wait = slots(conn, name, now, limit)
    if free == 0:
        return Gate(0, now + wait, "rate_limit")
    if free is not None:
        admit = free if admit is None else min(admit, free)
    return Gate(admit, now, "ready")
