"""Claims and their channel leases: claiming a channel's due prefix, renewing the
leases while claims run, giving them back, and taking back what stopped workers held.

:func:`claim_channel` is shared by :meth:`ClaimingMixin.claim_due` (every channel, its
own transaction) and :meth:`~notifier.outbox.writing.WritingMixin.enqueue_and_claim`
(the channels just written to, inside the transaction that wrote them, so a dispatch
costs one write transaction before its send).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from notifier.kinds import RateLimit
from notifier.models import Alert
from notifier.outbox.channels import (
    ALL_CHANNELS,
    CHANNELS_NAMED,
    TAKE_LEASE,
    OwnChannels,
    gate,
    own_rows,
    take_slot_in,
)
from notifier.outbox.policy import CircuitBreaker
from notifier.outbox.records import SELECT_IDS, Claim, Delivery, json_list

# Queries on live rows repeat the partial indexes' WHERE text (schema.LIVE) exactly.
# A delivery in flight, in words the live-row indexes match.
IN_FLIGHT = "state IN ('pending', 'inflight') AND state = 'inflight'"
_RENEW_CHANNEL_LEASES = (
    "UPDATE channels SET lease_expires = ? WHERE lease_owner = ? AND lease_expires > ?"
)
_RENEW_DELIVERY_LEASES = (
    f"UPDATE deliveries SET lease_expires = ? WHERE {IN_FLIGHT}"  # noqa: S608 (constants)
    " AND lease_owner = ? AND lease_expires > ?"
)
# A claim's deliveries still in flight go back to pending: ``:ids`` (a JSON array), or
# all of ``:owner``'s (on ``:channel``, or everywhere when it is NULL).
_BACK_TO_PENDING = (
    "UPDATE deliveries SET state = 'pending', lease_owner = NULL,"  # noqa: S608 (constants)
    f" lease_expires = NULL, updated_at = :now WHERE {IN_FLIGHT}"
    " AND lease_owner = :owner AND (:channel IS NULL OR channel = :channel)"
    " AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))"
)
_OWNERS = (
    "SELECT lease_owner FROM channels WHERE lease_owner IS NOT NULL UNION"  # noqa: S608 (constants)
    f" SELECT lease_owner FROM deliveries WHERE {IN_FLIGHT}"
)
_DROP_LEASES = "UPDATE channels SET lease_owner = NULL, lease_expires = 0 WHERE lease_owner = ?"
# The owner may run several claims of a channel (channels.gate): the channel lease is
# given back with the last of them, when none of its deliveries on it is in flight.
_LAST_CLAIM = (
    "lease_owner = ?2 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE channel = ?1"  # noqa: S608 (constants)
    f" AND {IN_FLIGHT} AND lease_owner = ?2)"
)
# ``?1``, ``?2``, ``?3``: the channel's name, the owner, the channel's identity.
RELEASE = (
    "UPDATE channels SET lease_owner = NULL, lease_expires = 0"  # noqa: S608 (constants)
    f" WHERE name = ?1 AND identity = ?3 AND {_LAST_CLAIM}"
)
# A send closes the circuit; the claim's last one also gives the channel lease back.
CLOSE_AND_RELEASE = (
    "UPDATE channels SET circuit = 'closed', failures = 0, open_until = 0,"  # noqa: S608 (constants)
    f" lease_owner = CASE WHEN {_LAST_CLAIM} THEN NULL ELSE lease_owner END,"
    f" lease_expires = CASE WHEN {_LAST_CLAIM} THEN 0 ELSE lease_expires END"
    " WHERE name = ?1 AND identity = ?3"
)
# A channel's live deliveries in order; with an identity, only those written for it (or
# before identities were kept).
HEAD = (
    "SELECT id, state, next_attempt_at, fingerprint, attempts, lease_owner, lease_expires"
    " FROM deliveries"
    " WHERE channel = :channel AND state IN ('pending', 'inflight')"
    " AND (:identity IS NULL OR channel_identity IN (:identity, '')) ORDER BY id"
)
# Folding more than this many waiting deliveries into one digest gains nothing.
DIGEST_MOST = 1000
_CLAIM = (
    "UPDATE deliveries SET state = 'inflight', lease_owner = ?, lease_expires = ?,"
    " updated_at = ? WHERE id IN (SELECT value FROM json_each(?))"
)


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
        """The identity whose deliveries to claim (``None``: every one)."""
        return None if self.identities is None else self.identities.get(channel)

    def key(self, channel: str) -> tuple[str, str]:
        """The channel's state: its row and send log, by name and identity."""
        return channel, (self.identities or {}).get(channel, "")


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
        # Being sent, by another claim of ours or under another identity's channel lease
        # (a delivery written before identities were kept): its alert waits for it.
        theirs = owner != row[5]
        if state == "inflight" and lease_expires > now and (owner == terms.owner or theirs):
            held.add(fp)
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
    ids = json_list(take)
    conn.execute(_CLAIM, (terms.owner, until, now, ids))
    name, identity = terms.key(channel)
    args = {"name": name, "identity": identity, "owner": terms.owner, "until": until}
    conn.execute(TAKE_LEASE, {**args, "probe": probe})
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
    limit = terms.rate_limits.get(claim.channel)
    if take_slot_in(conn, *terms.key(claim.channel), now, limit, first.id):
        return claim  # cannot happen under the gate; the claim will take its slot itself
    return attrs.evolve(claim, started=True)


def lease_key(channel: str, owner: str) -> tuple[str, str, str]:
    """The key of the deferred write that gives ``owner``'s claim on ``channel`` back."""
    return ("release", channel, owner)


def give_back(channel: str, identity: str, owner: str) -> Callable[[Any], object]:
    """The write that ends a claim after a send: circuit closed, lease released."""
    return lambda conn: conn.execute(CLOSE_AND_RELEASE, (channel, owner, identity))


def release(
    conn: sqlite3.Connection,
    channel: str,
    identity: str,
    owner: str,
    now: float,
    ids: Sequence[int] | None = None,
) -> int:
    """End a claim: its deliveries still in flight (``ids``; all of ``owner``'s on the
    channel when ``None``) go back to pending; the lease goes with the owner's last claim."""
    listed = None if ids is None else json_list(ids)
    args = {"now": now, "owner": owner, "channel": channel, "ids": listed}
    back = conn.execute(_BACK_TO_PENDING, args)
    conn.execute(RELEASE, (channel, owner, identity))
    return back.rowcount


class ClaimingMixin(OwnChannels):
    def claim_due(
        self,
        now: float,
        limit: int,
        owner: str,
        lease: float,
        *,
        rate_limits: Mapping[str, RateLimit] | None = None,
        breaker: CircuitBreaker | None = None,
        due_by: float | None = None,
        terms: ClaimTerms | None = None,
        channels: Iterable[str] | None = None,
    ) -> list[Claim]:
        """Move due deliveries to in flight under ``owner``'s lease, per channel in order.

        Takes at most ``limit`` deliveries per channel, no more than its rate limit has
        free slots for, one when its circuit wants a probe, and none from a channel
        another worker holds, the provider blocked, or whose circuit is open. In-flight
        deliveries whose lease expired (their worker died) are claimed again.

        :param due_by: claim only deliveries due by then (default ``now``): a pass that
            started earlier leaves alone what failed and was rescheduled during it.
        :param channels: claim only on these channels (default: every channel).
        """
        if terms is None:
            terms = ClaimTerms(owner, lease, limit, rate_limits or {}, breaker, self.identities)
        due_by = now if due_by is None else min(due_by, now)
        claims = []
        params: tuple[str, ...] = ()
        if channels is None:
            query = ALL_CHANNELS
        else:
            query, params = CHANNELS_NAMED, (json_list(sorted(set(channels))),)
        with self.db.write("claiming due deliveries") as conn:
            for row in own_rows(conn.execute(query, params).fetchall(), terms.identities):
                claim = claim_channel(conn, row, now, due_by, terms)
                if claim is not None:
                    claims.append(claim)
        return claims

    def renew(self, owner: str, now: float, lease: float) -> None:
        """Extend every lease ``owner`` holds to ``now + lease``: it is still at work."""
        until = now + lease
        with self.db.write("renewing leases") as conn:
            conn.execute(_RENEW_CHANNEL_LEASES, (until, owner, now))
            conn.execute(_RENEW_DELIVERY_LEASES, (until, owner, now))

    def end_claim(
        self, channel: str, owner: str, now: float, ids: Sequence[int] | None = None
    ) -> int:
        """Give up the claim: deliveries still in flight under ``owner`` go back to pending.

        :param ids: only these (one claim's): the owner's other claims of the channel
            go on, and the lease is given back with the last of them.
        :return: how many went back.
        """
        with self.db.write("releasing a channel") as conn:
            return release(conn, channel, self.identity(channel), owner, now, ids)

    end_lane = end_claim  # its former name

    def recover_orphans(self, alive: Callable[[str], bool], now: float) -> int:
        """Release channel leases and deliveries held by workers that ``alive`` says are gone.

        A worker killed mid-delivery leaves its lease behind; without this its
        deliveries would wait for the lease to expire.

        :return: how many deliveries went back to pending.
        """
        with self.db.write("recovering deliveries of stopped workers") as conn:
            owners = {row[0] for row in conn.execute(_OWNERS)}
            back = 0
            for owner in sorted(o for o in owners if o and not alive(o)):
                args = {"now": now, "owner": owner, "channel": None, "ids": None}
                back += conn.execute(_BACK_TO_PENDING, args).rowcount
                conn.execute(_DROP_LEASES, (owner,))
        return back
