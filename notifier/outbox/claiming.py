"""Claiming one channel: its due prefix, under the claimer's channel lease.

Shared by :meth:`OutboxStore.claim_due` (every channel, its own transaction) and
:meth:`OutboxStore.enqueue_and_claim` (the channels just written to, inside the
transaction that wrote them, so a dispatch costs one write transaction before its send).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from notifier.kinds import RateLimit
from notifier.models import Alert
from notifier.outbox.policy import CircuitBreaker, CircuitState
from notifier.outbox.records import DELIVERY_COLUMNS, Claim, Delivery
from notifier.ratelimit import window

# Id lists travel as one JSON array parameter (json_each), never spliced into SQL; queries
# on live rows repeat the partial indexes' WHERE text (schema.LIVE) exactly.
SELECT_IDS = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608 (constants only)
    " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
)
# A channel's live deliveries in order; with an identity, only those written for it (or
# before identities were kept).
HEAD = (
    "SELECT id, state, next_attempt_at, fingerprint, attempts, lease_owner, lease_expires"
    " FROM deliveries"
    " WHERE channel = :channel AND state IN ('pending', 'inflight')"
    " AND (:identity IS NULL OR channel_identity IN (:identity, '')) ORDER BY id"
)
# When the channel's next delivery can go: the earliest due time of the first live
# delivery of each alert (later ones wait for it): the channel's wake-up time.
EARLIEST = (
    "SELECT min(next_attempt_at) FROM deliveries AS d"
    " WHERE channel = :channel AND state IN ('pending', 'inflight')"
    " AND (:identity IS NULL OR channel_identity IN (:identity, ''))"
    " AND NOT EXISTS (SELECT 1 FROM deliveries AS e WHERE e.fingerprint = d.fingerprint"
    " AND e.channel = d.channel AND e.state IN ('pending', 'inflight') AND e.id < d.id)"
)
# Folding more than this many waiting deliveries into one digest gains nothing.
DIGEST_MOST = 1000
CHANNELS = "SELECT name, blocked_until, circuit, failures, open_until, lease_owner, lease_expires"
CHANNELS_NAMED = (
    f"{CHANNELS} FROM channels WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name"  # noqa: S608
)
_CLAIM = (
    "UPDATE deliveries SET state = 'inflight', lease_owner = ?, lease_expires = ?,"
    " updated_at = ? WHERE id IN (SELECT value FROM json_each(?))"
)
# A channel's row, made when its first delivery is written.
NEW_CHANNEL = "INSERT OR IGNORE INTO channels (name) VALUES (?)"
TAKE_LEASE = (
    "UPDATE channels SET lease_owner = ?, lease_expires = ?,"
    " circuit = CASE WHEN ? THEN 'half_open' ELSE circuit END WHERE name = ?"
)


def _json(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


@attrs.frozen
class ClaimTerms:
    """Who claims, for how long, and under which limits."""

    owner: str
    lease: float
    limit: int  # deliveries per channel at most
    rate_limits: Mapping[str, RateLimit] = attrs.field(factory=dict)
    breaker: CircuitBreaker | None = None
    # {channel: identity} of the channels this process has; None: every channel.
    identities: Mapping[str, str] | None = None
    # {channel: waiting deliveries past which they are folded into one digest}.
    digests: Mapping[str, int] = attrs.field(factory=dict)

    def has(self, channel: str) -> bool:
        return self.identities is None or channel in self.identities

    def identity(self, channel: str) -> str | None:
        return None if self.identities is None else self.identities.get(channel)


def claim_channel(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    now: float,
    due_by: float,
    terms: ClaimTerms,
    alerts: Mapping[int, Alert] | None = None,
) -> Claim | None:
    """Claim the channel in ``row`` (a :data:`CHANNELS` row): its due deliveries, or None.

    Order is kept per alert, not per channel: a delivery not due yet (waiting out its
    backoff), or still in flight, holds back the later deliveries of its own fingerprint
    only; the claimer's own claims do not hold back the rest of the channel. Takes no
    more than the rate limit has free slots for, one when its circuit
    wants a probe, and none while another worker holds the channel, the provider blocked
    it, or its circuit is open. Past the channel's digest threshold, every waiting
    delivery is claimed for one digest message.

    :param alerts: in-memory alerts by delivery id, for deliveries written just now.
    """
    channel = row[0]
    if not terms.has(channel):
        return None
    g = gate(conn, row, now, terms.rate_limits.get(channel), terms.breaker, terms.owner)
    if g.admit == 0:
        return None
    probe = terms.breaker is not None and g.admit == 1 and row[2] != "closed"
    threshold = 0 if probe else terms.digests.get(channel, 0)
    count = terms.limit if g.admit is None else min(terms.limit, g.admit)
    most = max(count, DIGEST_MOST) if threshold else count
    take: list[int] = []
    heads: list[tuple[int, int]] = []  # (attempts, id) of each alert's first live delivery
    held: set[str] = set()  # fingerprints with an earlier delivery not done or not due
    seen: set[str] = set()
    args = {"channel": channel, "identity": terms.identity(channel)}
    for id_, state, next_at, fp, attempts, owner, lease_expires in conn.execute(HEAD, args):
        if fp in held:
            continue
        if state == "inflight" and owner == terms.owner and lease_expires > now:
            held.add(fp)  # being sent by another of our claims: its alert waits for it
            continue
        if fp not in seen:
            seen.add(fp)
            heads.append((attempts, id_))
        held.add(fp)  # later deliveries of this alert go with it, or wait for it
        if state == "pending" and next_at > due_by:
            continue
        # An in-flight one is taken again: the gate let us in, so its channel lease ran out.
        take.append(id_)
        held.discard(fp)
        if len(take) >= most and not probe:
            break
    if probe:
        # The probe tests the provider, not the alert: the alert tried least often goes,
        # due or not, so one alert that always fails cannot keep the circuit open.
        take = [min(heads)[1]] if heads else []
    if not take:
        return None
    digest = bool(threshold) and len(take) >= threshold
    if not digest:
        take = take[:count]
    until = now + terms.lease
    ids = _json(take)
    conn.execute(_CLAIM, (terms.owner, until, now, ids))
    conn.execute(TAKE_LEASE, (terms.owner, until, probe, channel))
    alerts = alerts or {}
    rows = Delivery.read(conn, SELECT_IDS, (ids,))
    found = tuple(Delivery.from_row(r, alerts.get(r["id"])) for r in rows)
    return Claim(channel, found, probe, digest=digest)


def start_first(conn: sqlite3.Connection, claim: Claim, now: float, terms: ClaimTerms) -> Claim:
    """Take the send slot of the claim's first delivery now, as ``start_attempt`` would.

    Only for a claim that is sent at once: the slot is logged at the claim's time. The
    channel lease was just taken, and the gate just found the channel unblocked with a free
    slot, so nothing else needs checking.
    """
    first = claim.deliveries[0]
    if take_slot_in(conn, claim.channel, now, terms.rate_limits.get(claim.channel), first.id):
        return claim  # cannot happen under the gate; the claim will take its slot itself
    return attrs.evolve(claim, started=True)


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
