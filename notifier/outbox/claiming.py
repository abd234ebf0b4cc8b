"""Claiming one channel's lane: its due prefix, under the claimer's lane lease.

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
from notifier.outbox.attempts import take_slot_in
from notifier.outbox.gates import gate
from notifier.outbox.policy import CircuitBreaker
from notifier.outbox.records import Claim, Delivery

# Id lists travel as one JSON array parameter (json_each), never spliced into SQL; queries
# on live rows repeat the partial indexes' WHERE text (schema.LIVE) exactly.
SELECT_IDS = (
    "SELECT id, channel, idempotency_key, fingerprint, status, alert, mentions, state,"
    " attempts, next_attempt_at, last_error, created_at, enqueued_at, updated_at,"
    " deduplicated, lease_owner, lease_expires FROM deliveries"
    " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
)
HEAD = (
    "SELECT id, state, next_attempt_at, lease_expires FROM deliveries"
    " WHERE channel = ? AND state IN ('pending', 'inflight') ORDER BY id LIMIT ?"
)
CHANNELS = "SELECT name, blocked_until, circuit, failures, open_until, lease_owner, lease_expires"
CHANNELS_NAMED = (
    f"{CHANNELS} FROM channels WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name"  # noqa: S608
)
_CLAIM = (
    "UPDATE deliveries SET state = 'inflight', lease_owner = ?, lease_expires = ?,"
    " updated_at = ? WHERE id IN (SELECT value FROM json_each(?))"
)
LEASE_LANE = (
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


def claim_channel(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    now: float,
    due_by: float,
    terms: ClaimTerms,
    alerts: Mapping[int, Alert] | None = None,
) -> Claim | None:
    """Claim the due prefix of the channel in ``row`` (a :data:`CHANNELS` row), or None.

    Takes no more than its rate limit has free slots for, one when its circuit wants a
    probe, and none while another worker holds the lane, the provider blocked it, or
    its circuit is open. The first delivery not due by ``due_by`` holds back the rest.

    :param alerts: in-memory alerts by delivery id, for deliveries written just now.
    """
    channel = row[0]
    g = gate(conn, row, now, terms.rate_limits.get(channel), terms.breaker)
    if g.admit == 0:
        return None
    take = []
    count = terms.limit if g.admit is None else min(terms.limit, g.admit)
    for id_, state, next_at, _ in conn.execute(HEAD, (channel, count)):
        if state == "pending" and next_at > due_by:
            break
        take.append(id_)
    if not take:
        return None
    until = now + terms.lease
    ids = _json(take)
    conn.execute(_CLAIM, (terms.owner, until, now, ids))
    probe = terms.breaker is not None and g.admit == 1 and row[2] != "closed"
    conn.execute(LEASE_LANE, (terms.owner, until, probe, channel))
    alerts = alerts or {}
    found = tuple(Delivery.from_row(r, alerts.get(r[0])) for r in conn.execute(SELECT_IDS, (ids,)))
    return Claim(channel, found, probe)


def start_first(conn: sqlite3.Connection, claim: Claim, now: float, terms: ClaimTerms) -> Claim:
    """Take the send slot of the claim's first delivery now, as ``start_attempt`` would.

    Only for a claim that is sent at once: the slot is logged at the claim's time. The
    lane lease was just taken, and the gate just found the channel unblocked with a free
    slot, so nothing else needs checking.
    """
    first = claim.deliveries[0]
    if take_slot_in(conn, claim.channel, now, terms.rate_limits.get(claim.channel), first.id):
        return claim  # cannot happen under the gate; the lane will take its slot itself
    return attrs.evolve(claim, started=True)
