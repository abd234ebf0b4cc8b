"""Recording attempts: take a send slot, then mark a delivery delivered, retried or dead.

:class:`SendLogPacer` is the durable pacing backend (:class:`notifier.pacing.Pacer`):
every process sharing the file takes its send slots from the same ``sends`` table, so a
channel's rate limit holds across all of them. A claim takes its first send's slot in the
claiming transaction (:meth:`AttemptsMixin.start_attempt`); the pacer hands out the
slots of further parts of a split message, and of direct sends while the outbox is on.

Each method checks that the caller still holds the delivery's lease; a worker whose
lease expired (it was stalled, and another worker reclaimed the channel) finds ``False``
and leaves the delivery to its new owner.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from notifier.clock import Clock
from notifier.errors import RateLimited
from notifier.kinds import RateLimit
from notifier.outbox.claiming import NEW_CHANNEL, slots, take_slot_in
from notifier.outbox.policy import CircuitBreaker, CircuitState
from notifier.redact import redact

if TYPE_CHECKING:
    from notifier.outbox.database import Database
    from notifier.outbox.records import Delivery

# start_attempt's answer when the channel lease was lost: stop, touch nothing.
LEASE_LOST = math.inf

# Statements are whole literals (values bound, lists as JSON); live-row filters repeat the
# partial indexes' WHERE text exactly (schema.LIVE).
_RENEW = (
    "UPDATE deliveries SET lease_expires = ?"
    " WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?"
)
_RENEW_LANES = "UPDATE channels SET lease_expires = ? WHERE lease_owner = ? AND lease_expires > ?"
_RENEW_OWNED = (
    "UPDATE deliveries SET lease_expires = ? WHERE state IN ('pending', 'inflight')"
    " AND state = 'inflight' AND lease_owner = ? AND lease_expires > ?"
)
# A claim's deliveries still in flight go back to pending: ``:ids`` (a JSON array), or
# all of ``:owner``'s (on ``:channel``, or everywhere when it is NULL).
_BACK_TO_PENDING = (
    "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_expires = NULL,"
    " updated_at = :now WHERE state IN ('pending', 'inflight') AND state = 'inflight'"
    " AND lease_owner = :owner AND (:channel IS NULL OR channel = :channel)"
    " AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))"
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
_OWNERS = (
    "SELECT lease_owner FROM channels WHERE lease_owner IS NOT NULL UNION"
    " SELECT lease_owner FROM deliveries"
    " WHERE state IN ('pending', 'inflight') AND state = 'inflight'"
)
# The owner may run several claims of a channel (gates.gate): the channel lease is given back
# with the last of them, when none of its deliveries on the channel is in flight.
_RELEASE = (
    "UPDATE channels SET lease_owner = NULL, lease_expires = 0 WHERE name = ?1"
    " AND lease_owner = ?2 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE channel = ?1"
    " AND state IN ('pending', 'inflight') AND state = 'inflight' AND lease_owner = ?2)"
)
# A send closes the circuit; the claim's last one also gives the channel lease back.
CLOSE_CIRCUIT = (
    "UPDATE channels SET circuit = 'closed', failures = 0, open_until = 0 WHERE name = ?"
)
_CLOSE_AND_RELEASE = (
    "UPDATE channels SET circuit = 'closed', failures = 0, open_until = 0,"
    " lease_owner = CASE WHEN lease_owner = ?2 AND NOT EXISTS (SELECT 1 FROM deliveries"
    " WHERE channel = ?1 AND state IN ('pending', 'inflight') AND state = 'inflight'"
    " AND lease_owner = ?2) THEN NULL ELSE lease_owner END,"
    " lease_expires = CASE WHEN lease_owner = ?2 AND NOT EXISTS (SELECT 1 FROM deliveries"
    " WHERE channel = ?1 AND state IN ('pending', 'inflight') AND state = 'inflight'"
    " AND lease_owner = ?2) THEN 0 ELSE lease_expires END WHERE name = ?1"
)
_SENT = "INSERT OR REPLACE INTO dedup (fingerprint, status, channel, sent_at) VALUES (?, ?, ?, ?)"
# When each status of a fingerprint was last sent on a channel: the dedup window.
SENT_TIMES = "SELECT status, sent_at FROM dedup WHERE fingerprint = ? AND channel = ?"
# The provider asked for a pause: claim nothing of the channel before then.
_BLOCK = "UPDATE channels SET blocked_until = max(blocked_until, ?) WHERE name = ?"
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


def lease_key(channel: str, owner: str) -> tuple[str, str, str]:
    """The key of the deferred write that gives ``owner``'s claim on ``channel`` back."""
    return ("release", channel, owner)


def give_back(channel: str, owner: str) -> Callable[[Any], object]:
    """The write that ends a claim after a send: circuit closed, lease released."""
    return lambda conn: conn.execute(_CLOSE_AND_RELEASE, (channel, owner))


def _record_sent(conn: sqlite3.Connection, delivery: Delivery, owner: str, now: float) -> bool:
    done = conn.execute(_DELIVERED, (1, False, now, delivery.id, owner)).rowcount
    if done:
        conn.execute(_SENT, (delivery.fingerprint, delivery.status, delivery.channel, now))
    return bool(done)


def _record_delivered(
    conn: sqlite3.Connection,
    delivery: Delivery,
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
            conn.execute(_CLOSE_AND_RELEASE, (delivery.channel, owner))
            return True
        conn.execute(CLOSE_CIRCUIT, (delivery.channel,))
    if release:
        conn.execute(_RELEASE, (delivery.channel, owner))
    return bool(done)


def _release(
    conn: sqlite3.Connection,
    channel: str,
    owner: str,
    now: float,
    ids: Sequence[int] | None = None,
) -> int:
    """End a claim: its deliveries still in flight (``ids``; all of ``owner``'s on the
    channel when ``None``) go back to pending; the lease goes with the owner's last claim."""
    listed = None if ids is None else json.dumps(list(ids))
    args = {"now": now, "owner": owner, "channel": channel, "ids": listed}
    back = conn.execute(_BACK_TO_PENDING, args)
    conn.execute(_RELEASE, (channel, owner))
    return back.rowcount


class AttemptsMixin:
    db: Database

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
            row = conn.execute(
                "SELECT blocked_until FROM channels WHERE name = ?", (channel,)
            ).fetchone()
            blocked = row[0] - now if row is not None else 0.0
            free, wait = slots(conn, channel, now, limit)
        return max(blocked, wait if free == 0 else 0.0, 0.0)

    def block(self, channel: str, until: float) -> None:
        """The provider refused for its rate limit: claim nothing of ``channel`` before
        ``until``."""
        with self.db.write("pausing a channel") as conn:
            conn.execute(NEW_CHANNEL, (channel,))
            conn.execute(_BLOCK, (until, channel))

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
        with self.db.write("starting a delivery") as conn:
            row = conn.execute(
                "SELECT blocked_until, lease_owner FROM channels WHERE name = ?", (channel,)
            ).fetchone()
            if row is None or row[1] != owner:
                return LEASE_LOST
            blocked_until: float = row[0]
            if blocked_until > now:
                return blocked_until - now
            wait = take_slot_in(conn, channel, now, rate_limit, ids[0])
            if wait > 0:
                return wait
            until = now + lease
            conn.execute("UPDATE channels SET lease_expires = ? WHERE name = ?", (until, channel))
            conn.execute(_RENEW, (until, json.dumps(list(ids)), owner))
        return 0.0

    def renew(self, owner: str, now: float, lease: float) -> None:
        """Extend every lease ``owner`` holds to ``now + lease``: it is still at work."""
        until = now + lease
        with self.db.write("renewing leases") as conn:
            conn.execute(_RENEW_LANES, (until, owner, now))
            conn.execute(_RENEW_OWNED, (until, owner, now))

    def end_lane(
        self, channel: str, owner: str, now: float, ids: Sequence[int] | None = None
    ) -> int:
        """Give up the claim: deliveries still in flight under ``owner`` go back to pending.

        :param ids: only these (one claim's): the owner's other claims of the channel
            go on, and the lease is given back with the last of them.
        :return: how many went back.
        """
        with self.db.write("releasing a channel") as conn:
            return _release(conn, channel, owner, now, ids)

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
            transaction (at the latest a moment later; see :mod:`notifier.outbox.deferred`);
            returns ``True``.
        """
        if defer and release and not deduplicated:
            self.db.defer(lambda conn: _record_sent(conn, delivery, owner, now))
            channel = delivery.channel
            # Kept apart, so the channel's next dispatch from this process can take it
            # back and go on under the same lease (see notifier.outbox.writing).
            self.db.defer(give_back(channel, owner), key=lease_key(channel, owner))
            return True
        with self.db.write("recording a delivery") as conn:
            return _record_delivered(conn, delivery, owner, now, deduplicated, release)

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
        with self.db.write("scheduling a retry") as conn:
            done = conn.execute(
                _RETRY,
                (int(count_attempt), next_at, _error(error), now, delivery.id, owner),
            ).rowcount
            if done and breaker is not None:
                row = conn.execute(
                    "SELECT circuit, failures, open_until FROM channels WHERE name = ?",
                    (delivery.channel,),
                ).fetchone()
                state = breaker.on_failure(CircuitState(*row), now)
                conn.execute(
                    "UPDATE channels SET circuit = ?, failures = ?, open_until = ? WHERE name = ?",
                    (state.circuit.value, state.failures, state.open_until, delivery.channel),
                )
            if done and block_until is not None:
                conn.execute(_BLOCK, (block_until, delivery.channel))
            if release:  # the claim's last delivery: nothing of the claim is left in flight
                conn.execute(_RELEASE, (delivery.channel, owner))
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
        with self.db.write("recording a dead letter") as conn:
            done = conn.execute(
                _DEAD,
                (int(count_attempt), _error(error), now, delivery.id, owner),
            ).rowcount
            if release:  # the claim's last delivery: nothing of the claim is left in flight
                conn.execute(_RELEASE, (delivery.channel, owner))
        return bool(done)

    def mark_folded(self, deliveries: Sequence[Delivery], owner: str, now: float, by: str) -> int:
        """These deliveries were told in one digest (``by`` names it); the claim ends.

        :return: how many were recorded (those whose lease ``owner`` still held).
        """
        done = 0
        with self.db.write("recording a digest") as conn:
            for d in deliveries:
                if conn.execute(_FOLDED, (now, by, d.id, owner)).rowcount:
                    done += 1
                    conn.execute(_SENT, (d.fingerprint, d.status, d.channel, now))
            if deliveries:
                channel = deliveries[0].channel
                conn.execute(CLOSE_CIRCUIT, (channel,))
                _release(conn, channel, owner, now, [d.id for d in deliveries])
        return done

    def release_backlog(self, channel: str, now: float) -> int:
        """Make ``channel``'s deliveries that wait out a backoff due now: a probe found
        the provider back, and their delays were the outage's, not theirs."""
        with self.db.write("releasing a backlog") as conn:
            return conn.execute(_BACKLOG_DUE, (now, channel, now)).rowcount

    def sent_times(self, fingerprint: str, channel: str) -> dict[str, float]:
        """When each status of ``fingerprint`` was last sent on ``channel``."""
        with self.db.read("reading the dedup window") as conn:
            rows = conn.execute(SENT_TIMES, (fingerprint, channel)).fetchall()
        return dict(rows)

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
                conn.execute(
                    "UPDATE channels SET lease_owner = NULL, lease_expires = 0"
                    " WHERE lease_owner = ?",
                    (owner,),
                )
        return back


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
