"""A channel's shared state: its row (lease, provider's block, circuit) and send log.

Every process sharing the file reads and writes the same ``channels`` row and ``sends``
rows, so a channel's rate limit, breaker and lease hold across all of them. Here is what
stops claiming a channel now (:func:`gate`), when it can next be claimed
(:meth:`ChannelsMixin.wakes`), and the send slots: a claim takes its first send's slot in
the claiming transaction; :class:`SendLogPacer` (a :class:`notifier.pacing.Pacer`) hands
out the slots of further parts of a split message, and of direct sends while the outbox
is on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from notifier.clock import Clock
from notifier.errors import RateLimited
from notifier.kinds import RateLimit
from notifier.outbox.policy import CircuitBreaker, CircuitState
from notifier.ratelimit import window

if TYPE_CHECKING:
    from notifier.outbox.database import Database

CHANNELS = "SELECT name, blocked_until, circuit, failures, open_until, lease_owner, lease_expires"
ALL_CHANNELS = f"{CHANNELS} FROM channels ORDER BY name"
CHANNELS_NAMED = (
    f"{CHANNELS} FROM channels WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name"  # noqa: S608
)
# A channel's row, made when its first delivery is written.
NEW_CHANNEL = "INSERT OR IGNORE INTO channels (name) VALUES (?)"
TAKE_LEASE = (
    "UPDATE channels SET lease_owner = ?, lease_expires = ?,"
    " circuit = CASE WHEN ? THEN 'half_open' ELSE circuit END WHERE name = ?"
)
CLOSE_CIRCUIT = (
    "UPDATE channels SET circuit = 'closed', failures = 0, open_until = 0 WHERE name = ?"
)
# The provider asked for a pause: claim nothing of the channel before then.
BLOCK = "UPDATE channels SET blocked_until = max(blocked_until, ?) WHERE name = ?"
_BLOCKED = "SELECT blocked_until FROM channels WHERE name = ?"
# What a claim's send checks before it starts: the pause, and that the lease is its own.
START = "SELECT blocked_until, lease_owner FROM channels WHERE name = ?"
RENEW_CHANNEL_LEASE = "UPDATE channels SET lease_expires = ? WHERE name = ?"
CIRCUIT = "SELECT circuit, failures, open_until FROM channels WHERE name = ?"
SET_CIRCUIT = "UPDATE channels SET circuit = ?, failures = ?, open_until = ? WHERE name = ?"
# When the channel's next delivery can go: the earliest due time of the first live
# delivery of each alert (later ones wait for it): the channel's wake-up time.
EARLIEST = (
    "SELECT min(next_attempt_at) FROM deliveries AS d"
    " WHERE channel = :channel AND state IN ('pending', 'inflight')"
    " AND (:identity IS NULL OR channel_identity IN (:identity, ''))"
    " AND NOT EXISTS (SELECT 1 FROM deliveries AS e WHERE e.fingerprint = d.fingerprint"
    " AND e.channel = d.channel AND e.state IN ('pending', 'inflight') AND e.id < d.id)"
)
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

    :param claimer: who would claim. The claim's holder may claim more of the channel
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


def take_slot_in(
    conn: sqlite3.Connection,
    channel: str,
    now: float,
    limit: RateLimit | None,
    delivery_id: int | None,
) -> float:
    if limit is None:
        return 0.0
    conn.execute("DELETE FROM sends WHERE channel = ? AND at <= ?", (channel, now - window(limit)))
    free, wait = slots(conn, channel, now, limit)
    if free == 0:
        return wait
    conn.execute(
        "INSERT INTO sends (channel, at, delivery_id) VALUES (?, ?, ?)",
        (channel, now, delivery_id),
    )
    return 0.0


class ChannelsMixin:
    db: Database
    identities: Mapping[str, str] | None

    def take_slot(
        self, channel: str, now: float, limit: RateLimit | None, delivery_id: int | None = None
    ) -> float:
        """Take one send slot of ``channel``: 0 when taken, else seconds until one frees.

        For the extra requests of a delivery split into parts; the first request's slot
        comes with :meth:`start_attempt`.
        """
        with self.db.write("taking a send slot") as conn:
            return take_slot_in(conn, channel, now, limit, delivery_id)

    def slot_delay(self, channel: str, now: float, limit: RateLimit) -> float:
        """Seconds until ``channel`` may send under ``limit`` (0: now); takes nothing."""
        with self.db.read("reading the send log") as conn:
            row = conn.execute(_BLOCKED, (channel,)).fetchone()
            blocked = row[0] - now if row is not None else 0.0
            free, wait = slots(conn, channel, now, limit)
        return max(blocked, wait if free == 0 else 0.0, 0.0)

    def block(self, channel: str, until: float) -> None:
        """The provider refused for its rate limit: claim nothing of ``channel`` before
        ``until``."""
        with self.db.write("pausing a channel") as conn:
            conn.execute(NEW_CHANNEL, (channel,))
            conn.execute(BLOCK, (until, channel))

    def wakes(
        self,
        now: float,
        *,
        rate_limits: Mapping[str, RateLimit] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> list[Wake]:
        """For each channel of ours with queued work: when it can next be claimed, and
        why not before."""
        rate_limits = rate_limits or {}
        found = []
        mine = self.identities
        with self.db.read("reading the queue") as conn:
            for row in conn.execute(ALL_CHANNELS).fetchall():
                if mine is not None and row[0] not in mine:
                    continue
                identity = None if mine is None else mine[row[0]]
                args = {"channel": row[0], "identity": identity}
                due = conn.execute(EARLIEST, args).fetchone()[0]
                if due is None:
                    continue
                g = gate(conn, row, now, rate_limits.get(row[0]), breaker)
                found.append(Wake(row[0], due, max(due, g.ready_at), g.reason))
        return found


class SendLog(Protocol):
    """The store's side of the send log, as :class:`SendLogPacer` uses it."""

    def take_slot(
        self, channel: str, now: float, limit: RateLimit | None, delivery_id: int | None = None
    ) -> float: ...

    def slot_delay(self, channel: str, now: float, limit: RateLimit) -> float: ...

    def block(self, channel: str, until: float) -> None: ...


class SendLogPacer:
    """A :class:`notifier.pacing.Pacer` over the outbox's shared send log."""

    def __init__(self, store: SendLog, channel: str, limit: RateLimit, clock: Clock) -> None:
        self.store = store
        self.channel = channel
        self.limit = limit
        self.clock = clock

    def acquire(self, max_wait: float | None = None) -> float:
        waited = 0.0
        while (wait := self.store.take_slot(self.channel, self.clock.time(), self.limit)) > 0:
            if max_wait is not None and waited + wait > max_wait:
                raise RateLimited(
                    f"channel {self.channel!r} rate limit: next slot in {wait:.1f}s, "
                    "after the delivery_timeout",
                    retry_after=wait,
                    attempts=0,
                )
            self.clock.sleep(wait)
            waited += wait
        return waited

    def delay(self) -> float:
        return self.store.slot_delay(self.channel, self.clock.time(), self.limit)

    def block_for(self, seconds: float) -> None:
        self.store.block(self.channel, self.clock.time() + max(seconds, 0.0))
