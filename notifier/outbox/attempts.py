"""Recording attempts: take a send slot, then mark a delivery delivered, retried or dead.

A claim's sends start with :meth:`AttemptsMixin.start_attempt`: its send slot, from the
shared send log of :mod:`~.channels`. Each method checks that the caller still holds the
delivery's lease; a worker whose lease expired (it was stalled, and another worker
reclaimed the channel) finds ``False`` and leaves the delivery to its new owner.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from notifier.kinds import RateLimit
from notifier.outbox.channels import (
    BLOCK,
    CIRCUIT,
    CLOSE_CIRCUIT,
    RENEW_CHANNEL_LEASE,
    SET_CIRCUIT,
    START,
    OwnChannels,
    take_slot_in,
)
from notifier.outbox.claiming import CLOSE_AND_RELEASE, RELEASE, give_back, lease_key, release
from notifier.outbox.policy import CircuitBreaker, CircuitState
from notifier.outbox.records import json_list
from notifier.redact import redact

if TYPE_CHECKING:
    from notifier.outbox.records import Delivery

# start_attempt's answer when the channel lease was lost: stop, touch nothing.
LEASE_LOST = math.inf

# Statements are whole literals (values bound, lists as JSON); live-row filters repeat the
# partial indexes' WHERE text exactly (schema.LIVE).
_RENEW = (
    "UPDATE deliveries SET lease_expires = ?"
    " WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?"
)
_DELIVERED = (
    "UPDATE deliveries SET state = 'delivered', attempts = attempts + ?, deduplicated = ?,"
    " updated_at = ?, lease_owner = NULL, lease_expires = NULL"
    " WHERE id = ? AND state = 'inflight' AND lease_owner = ?"
)
_RETRY = (
    "UPDATE deliveries SET state = 'pending', attempts = attempts + ?, next_attempt_at = ?,"
    " last_error = ?, updated_at = ?, lease_owner = NULL, lease_expires = NULL"
    " WHERE id = ? AND state = 'inflight' AND lease_owner = ?"
)
_DEAD = (
    "UPDATE deliveries SET state = 'dead', attempts = attempts + ?, last_error = ?,"
    " updated_at = ?, lease_owner = NULL, lease_expires = NULL"
    " WHERE id = ? AND state = 'inflight' AND lease_owner = ?"
)
# Every send on record of the deliveries ``{where}`` picks, with the channel identity it
# was sent under: a delivered row that was sent (not found a duplicate) says so itself,
# and the dedup table keeps what rows purged since said (schema version 5), so recording
# a send writes no second row.
SENT_PARTS = (
    "SELECT fingerprint, channel, identity, status, sent_at AS at FROM dedup WHERE {where}",
    "SELECT fingerprint, channel, channel_identity AS identity, status, updated_at AS at"
    " FROM deliveries WHERE {where} AND state = 'delivered' AND deduplicated = 0",
)
SENT_ROWS = " UNION ALL ".join(SENT_PARTS)
# The sends of one fingerprint on one channel under this process's identity (or under
# none, written before identities were kept).
SENT_HERE = (  # built from constants
    "SELECT status, at FROM"  # noqa: S608
    f" ({SENT_ROWS.format(where='fingerprint = :fp AND channel = :channel')})"
    " WHERE identity IN (:identity, '')"
)
# When each status of a fingerprint was last sent on a channel: the dedup window.
SENT_TIMES = f"SELECT status, max(at) FROM ({SENT_HERE}) GROUP BY status"  # noqa: S608
_FOLDED = (
    "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, updated_at = ?,"
    " delivered_by = ?, lease_owner = NULL, lease_expires = NULL"
    " WHERE id = ? AND state = 'inflight' AND lease_owner = ?"
)
# Deliveries waiting out a backoff from failed attempts: due now that a probe got through.
_BACKLOG_DUE = (
    "UPDATE deliveries SET next_attempt_at = ? WHERE channel = ?"
    " AND state IN ('pending', 'inflight') AND state = 'pending' AND next_attempt_at > ?"
    " AND attempts > 0"
)
# Errors are kept for operators; the redacted text is plenty, and bounded.
_MAX_ERROR = 2000


def _error(text: str) -> str:
    return redact(str(text))[:_MAX_ERROR]


def _record_sent(conn: sqlite3.Connection, delivery: Delivery, owner: str, now: float) -> bool:
    return bool(conn.execute(_DELIVERED, (1, False, now, delivery.id, owner)).rowcount)


def _record_delivered(
    conn: sqlite3.Connection,
    delivery: Delivery,
    identity: str,
    owner: str,
    now: float,
    deduplicated: bool,
    release: bool,
) -> bool:
    if deduplicated:
        done = conn.execute(_DELIVERED, (0, True, now, delivery.id, owner)).rowcount
    else:
        done = _record_sent(conn, delivery, owner, now)
    if done and not deduplicated:
        if release:  # the claim's last delivery: nothing of the claim is left in flight
            conn.execute(CLOSE_AND_RELEASE, (delivery.channel, owner, identity))
            return True
        conn.execute(CLOSE_CIRCUIT, (delivery.channel, identity))
    if release:
        conn.execute(RELEASE, (delivery.channel, owner, identity))
    return bool(done)


class AttemptsMixin(OwnChannels):
    def start_attempt(
        self,
        channel: str,
        owner: str,
        ids: Sequence[int],
        now: float,
        lease: float,
        rate_limit: RateLimit | None = None,
    ) -> float:
        """Take a send slot for ``ids[0]`` and renew the lease on ``ids``.

        :return: 0 when the send may start now; else seconds to wait (the channel's rate
            limit is used up, or the provider blocked it), and nothing was taken;
            :data:`LEASE_LOST` when ``owner`` no longer holds the channel.
        """
        key = (channel, self.identity(channel))
        with self.db.write("starting a delivery") as conn:
            row = conn.execute(START, key).fetchone()
            if row is None or row[1] != owner:
                return LEASE_LOST
            blocked_until: float = row[0]
            if blocked_until > now:
                return blocked_until - now
            wait = take_slot_in(conn, *key, now, rate_limit, ids[0])
            if wait > 0:
                return wait
            until = now + lease
            conn.execute(RENEW_CHANNEL_LEASE, (until, *key))
            conn.execute(_RENEW, (until, json_list(ids), owner))
        return 0.0

    def mark_delivered(
        self,
        delivery: Delivery,
        owner: str,
        now: float,
        *,
        deduplicated: bool = False,
        release: bool = False,
        defer: bool = False,
    ) -> bool:
        """The delivery was sent (or is a duplicate of one sent within the window).

        :param release: this is the last delivery of the owner's claim: give the channel
            lease up in the same transaction, as :meth:`end_lane`.
        :param defer: with ``release``: write the record with the next write
            transaction (at the latest a moment later; see :mod:`notifier.outbox.database`);
            returns ``True``.
        """
        if defer and release and not deduplicated:
            channel = delivery.channel
            back = give_back(channel, self.identity(channel), owner)
            # The release is kept apart, under its key, so the channel's next dispatch
            # from this process can take it back and go on under the same lease (see
            # notifier.outbox.writing).
            self.db.defer_all(
                (
                    (None, lambda conn: _record_sent(conn, delivery, owner, now)),
                    (lease_key(channel, owner), back),
                )
            )
            return True
        identity = self.identity(delivery.channel)
        with self.db.write("recording a delivery") as conn:
            return _record_delivered(conn, delivery, identity, owner, now, deduplicated, release)

    def mark_retry(
        self,
        delivery: Delivery,
        owner: str,
        now: float,
        next_at: float,
        error: str,
        *,
        count_attempt: bool = True,
        breaker: CircuitBreaker | None = None,
        block_until: float | None = None,
        release: bool = False,
    ) -> bool:
        """Back to pending until ``next_at``, keeping ``error`` (redacted).

        :param count_attempt: false for a provider's rate-limit refusal, which is pacing,
            not a failure: it counts toward neither ``max_attempts`` nor the breaker.
        :param breaker: count a failure toward the channel's circuit.
        :param block_until: the provider asked for a pause: claim nothing from the
            channel before then.
        :param release: also give up the claim, as :meth:`end_lane`.
        """
        key = (delivery.channel, self.identity(delivery.channel))
        with self.db.write("scheduling a retry") as conn:
            done = conn.execute(
                _RETRY,
                (int(count_attempt), next_at, _error(error), now, delivery.id, owner),
            ).rowcount
            if done and breaker is not None:
                row = conn.execute(CIRCUIT, key).fetchone()
                state = breaker.on_failure(CircuitState(*row), now)
                circuit = (state.circuit.value, state.failures, state.open_until)
                conn.execute(SET_CIRCUIT, (*circuit, *key))
            if done and block_until is not None:
                conn.execute(BLOCK, (block_until, *key))
            if release:  # the claim's last delivery: nothing of the claim is left in flight
                conn.execute(RELEASE, (delivery.channel, owner, key[1]))
        return bool(done)

    def mark_dead(
        self,
        delivery: Delivery,
        owner: str,
        now: float,
        error: str,
        *,
        count_attempt: bool = True,
        release: bool = False,
    ) -> bool:
        """Failed permanently: keep it as a dead letter with ``error`` (redacted).

        :param release: also give up the claim, as :meth:`end_lane`.
        """
        identity = self.identity(delivery.channel)
        with self.db.write("recording a dead letter") as conn:
            done = conn.execute(
                _DEAD,
                (int(count_attempt), _error(error), now, delivery.id, owner),
            ).rowcount
            if release:  # the claim's last delivery: nothing of the claim is left in flight
                conn.execute(RELEASE, (delivery.channel, owner, identity))
        return bool(done)

    def mark_folded(self, deliveries: Sequence[Delivery], owner: str, now: float, by: str) -> int:
        """These deliveries were told in one digest (``by`` names it); the claim ends.

        :return: how many were recorded (those whose lease ``owner`` still held).
        """
        done = 0
        with self.db.write("recording a digest") as conn:
            for d in deliveries:
                done += conn.execute(_FOLDED, (now, by, d.id, owner)).rowcount
            if deliveries:
                channel = deliveries[0].channel
                identity = self.identity(channel)
                conn.execute(CLOSE_CIRCUIT, (channel, identity))
                release(conn, channel, identity, owner, now, [d.id for d in deliveries])
        return done

    def release_backlog(self, channel: str, now: float) -> int:
        """Make ``channel``'s deliveries that wait out a backoff due now: a probe found
        the provider back, and their delays were the outage's, not theirs."""
        with self.db.write("releasing a backlog") as conn:
            return conn.execute(_BACKLOG_DUE, (now, channel, now)).rowcount

    def sent_times(self, fingerprint: str, channel: str) -> dict[str, float]:
        """When each status of ``fingerprint`` was last sent on ``channel``."""
        with self.db.read("reading the dedup window") as conn:
            args = {"fp": fingerprint, "channel": channel, "identity": self.identity(channel)}
            rows = conn.execute(SENT_TIMES, args).fetchall()
        return dict(rows)
