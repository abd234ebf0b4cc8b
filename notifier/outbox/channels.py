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

# A channel's state is keyed by its name and identity (see notifier.identity): two
# configurations sharing the file, each with a channel of one name but other settings,
# each have their own lease, provider's block, circuit and send log. ``?1`` and ``?2``
# (or the last two ``?``) are the name and the identity.
CHANNELS = (
    "SELECT name, blocked_until, circuit, failures, open_until, lease_owner, lease_expires,"
    " identity"
)
ALL_CHANNELS = f"{CHANNELS} FROM channels ORDER BY name, identity"
CHANNELS_NAMED = (
    f"{CHANNELS} FROM channels WHERE name IN (SELECT value FROM json_each(?))"  # noqa: S608
    " ORDER BY name, identity"
)
_KEY = "name = ? AND identity = ?"
# A channel's row, made when its first delivery is written.
NEW_CHANNEL = "INSERT OR IGNORE INTO channels (name, identity) VALUES (?, ?)"
# Taken by a claim (made when the channel has no row for this identity yet).
TAKE_LEASE = (
    "INSERT INTO channels (name, identity, lease_owner, lease_expires)"
    " VALUES (:name, :identity, :owner, :until) ON CONFLICT (name, identity) DO UPDATE"
    " SET lease_owner = :owner, lease_expires = :until,"
    " circuit = CASE WHEN :probe THEN 'half_open' ELSE circuit END"
)
CLOSE_CIRCUIT = f"UPDATE channels SET circuit = 'closed', failures = 0, open_until = 0 WHERE {_KEY}"  # noqa: S608
# The provider asked for a pause: claim nothing of the channel before then.
BLOCK = f"UPDATE channels SET blocked_until = max(blocked_until, ?) WHERE {_KEY}"  # noqa: S608
_BLOCKED = f"SELECT blocked_until FROM channels WHERE {_KEY}"  # noqa: S608 (constants)
# What a claim's send checks before it starts: the pause, and that the lease is its own.
START = f"SELECT blocked_until, lease_owner FROM channels WHERE {_KEY}"  # noqa: S608
RENEW_CHANNEL_LEASE = f"UPDATE channels SET lease_expires = ? WHERE {_KEY}"  # noqa: S608
CIRCUIT = f"SELECT circuit, failures, open_until FROM channels WHERE {_KEY}"  # noqa: S608
SET_CIRCUIT = f"UPDATE channels SET circuit = ?, failures = ?, open_until = ? WHERE {_KEY}"  # noqa: S608
# A channels row but its name and identity: unblocked, circuit closed, no lease.
FRESH = (0.0, "closed", 0, 0.0, None, 0.0)
# When the channel's next delivery can go: the earliest due time of the first live
# delivery of each alert (later ones wait for it): the channel's wake-up time.
EARLIEST = (
    "SELECT min(next_attempt_at) FROM deliveries AS d"
    " WHERE channel = :channel AND state IN ('pending', 'inflight')"
    " AND (:identity IS NULL OR channel_identity IN (:identity, ''))"
    " AND NOT EXISTS (SELECT 1 FROM deliveries AS e WHERE e.fingerprint = d.fingerprint"
    " AND e.channel = d.channel AND e.state IN ('pending', 'inflight') AND e.id < d.id)"
)
_WINDOW = "SELECT at FROM sends WHERE channel = ? AND identity = ? AND at > ? ORDER BY at"
_FORGET = "DELETE FROM sends WHERE channel = ? AND identity = ? AND at <= ?"
_SEND = "INSERT INTO sends (channel, identity, at, delivery_id) VALUES (?, ?, ?, ?)"


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


def own_rows(
    rows: list[tuple[Any, ...]], identities: Mapping[str, str] | None
) -> list[tuple[Any, ...]]:
    """Of ``rows`` (:data:`CHANNELS` rows), those of a process with these
    ``{channel: identity}`` (``None``: every channel, with the identity ``""``), one per
    channel; a channel it has no row for yet gets a fresh one."""
    found: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        name = row[0]
        if identities is not None and name not in identities:
            continue
        mine = "" if identities is None else identities[name]
        if row[7] == mine:
            found[name] = row
        else:
            found.setdefault(name, (name, *FRESH, mine))
    return [found[name] for name in sorted(found)]


def slots(
    conn: sqlite3.Connection, channel: str, identity: str, now: float, limit: RateLimit | None
) -> tuple[int | None, float]:
    """Free send slots of ``channel`` under ``limit`` now, and seconds until one frees.

    ``(None, 0.0)`` when the channel has no limit. Never more than ``limit.count`` sends
    start in any window of ``limit.per`` seconds.
    """
    if limit is None:
        return None, 0.0
    span = window(limit)
    times = [row[0] for row in conn.execute(_WINDOW, (channel, identity, now - span))]
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
    name, blocked_until, circuit, failures, open_until, owner, lease_expires, identity = row
    if owner and lease_expires > now and (owner != claimer or circuit != "closed"):
        return Gate(0, lease_expires, "leased")
    if blocked_until > now:
        return Gate(0, blocked_until, "blocked")
    admit = None
    if breaker is not None:
        admit = breaker.admits(CircuitState(circuit, failures, open_until), now)
        if admit == 0:
            return Gate(0, open_until, "circuit")
    free, wait = slots(conn, name, identity, now, limit)
    if free == 0:
        return Gate(0, now + wait, "rate_limit")
    if free is not None:
        admit = free if admit is None else min(admit, free)
    return Gate(admit, now, "ready")


def take_slot_in(
    conn: sqlite3.Connection,
    channel: str,
    identity: str,
    now: float,
    limit: RateLimit | None,
    delivery_id: int | None,
) -> float:
    """Take one send slot in the caller's transaction: 0 when taken, else seconds until
    one frees."""
    if limit is None:
        return 0.0
    conn.execute(_FORGET, (channel, identity, now - window(limit)))
    free, wait = slots(conn, channel, identity, now, limit)
    if free == 0:
        return wait
    conn.execute(_SEND, (channel, identity, now, delivery_id))
    return 0.0


class OwnChannels:
    """The channels a store's process has, by name and identity; mixed into every part
    of :class:`~notifier.outbox.store.OutboxStore`."""

    db: Database
    # The channels this process has, {name: identity}, stamped on what it writes;
    # None (a bare store): deliveries are written without an identity.
    identities: Mapping[str, str] | None

    def identity(self, channel: str) -> str:
        """The identity this process has ``channel`` with (``""`` when it is not told)."""
        return (self.identities or {}).get(channel, "")


class ChannelsMixin(OwnChannels):
    def take_slot(
        self, channel: str, now: float, limit: RateLimit | None, delivery_id: int | None = None
    ) -> float:
        """Take one send slot of ``channel``: 0 when taken, else seconds until one frees.

        For the extra requests of a delivery split into parts; the first request's slot
        comes with :meth:`start_attempt`.
        """
        with self.db.write("taking a send slot") as conn:
            return take_slot_in(conn, channel, self.identity(channel), now, limit, delivery_id)

    def slot_delay(self, channel: str, now: float, limit: RateLimit) -> float:
        """Seconds until ``channel`` may send under ``limit`` (0: now); takes nothing."""
        identity = self.identity(channel)
        with self.db.read("reading the send log") as conn:
            row = conn.execute(_BLOCKED, (channel, identity)).fetchone()
            blocked = row[0] - now if row is not None else 0.0
            free, wait = slots(conn, channel, identity, now, limit)
        return max(blocked, wait if free == 0 else 0.0, 0.0)

    def block(self, channel: str, until: float) -> None:
        """The provider refused for its rate limit: claim nothing of ``channel`` before
        ``until``."""
        with self.db.write("pausing a channel") as conn:
            key = (channel, self.identity(channel))
            conn.execute(NEW_CHANNEL, key)
            conn.execute(BLOCK, (until, *key))

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
            for row in own_rows(conn.execute(ALL_CHANNELS).fetchall(), mine):
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
