"""The common dispatch: one delivery, written and claimed in few statements.

Most dispatches write one delivery to a channel with nothing queued: no repeat of its
fingerprint in flight, no older backlog, the lane free. Then the delivery is inserted
already in flight under the lane lease, which one more statement takes; the general
path's id bookkeeping, re-reads and separate claim are skipped: 5 statements instead of
11 between ``BEGIN`` and ``COMMIT``. In a stream of dispatches to one channel the lane
is still this process's from the send before (``held``), and the lease is kept, not
taken again: 4.

Whenever the first reads find anything else (a live delivery of the fingerprint or on
the channel), :func:`write_and_claim_one` returns ``None`` having written nothing, and
the general path in :mod:`notifier.outbox.store` takes over in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from notifier.models import Outcome
from notifier.outbox.attempts import CLOSE_CIRCUIT, take_slot_in
from notifier.outbox.claiming import CHANNELS, LEASE_LANE, ClaimTerms
from notifier.outbox.gates import gate
from notifier.outbox.policy import is_duplicate
from notifier.outbox.records import Claim, Delivery, DeliveryState, Enqueued, NewDelivery

if TYPE_CHECKING:
    from notifier.outbox.store import OutboxStore

# Live rows repeat the partial indexes' WHERE text (schema.LIVE) exactly.
_LIVE_FP = (
    "SELECT 1 FROM deliveries WHERE state IN ('pending', 'inflight') AND fingerprint = ? LIMIT 1"
)
_SENT = "SELECT status, sent_at FROM dedup WHERE fingerprint = ? AND channel = ?"
_CHANNEL = (
    f"{CHANNELS}, EXISTS (SELECT 1 FROM deliveries"  # noqa: S608 (constants only)
    " WHERE channel = ? AND state IN ('pending', 'inflight')) FROM channels WHERE name = ?"
)
_INSERT = (
    "INSERT INTO deliveries (idempotency_key, channel, fingerprint, status, alert, mentions,"
    " state, next_attempt_at, created_at, enqueued_at, updated_at, lease_owner,"
    " lease_expires, channel_identity, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?)"
)
_NEW_LEASED = "INSERT INTO channels (name, lease_owner, lease_expires) VALUES (?, ?, ?)"
_NEW_CHANNEL = "INSERT OR IGNORE INTO channels (name) VALUES (?)"
# A channels row but its name: unblocked, circuit closed, lane free.
_FRESH_CHANNEL = (0.0, "closed", 0, 0.0, None, 0.0)


def write_and_claim_one(
    conn: sqlite3.Connection,
    item: NewDelivery,
    key: str,
    text: str,
    now: float,
    dedup_window: float,
    terms: ClaimTerms,
    *,
    held: bool = False,
    store: OutboxStore | None = None,
) -> tuple[Enqueued, Claim | None] | None:
    """Write ``item`` (its alert encoded as ``text``) and claim it when its lane is free.

    :param held: ``terms.owner`` still holds the channel's lane from its last send, whose
        release it took back (:func:`~notifier.outbox.attempts.lane_key`): the lane is
        idle and ours, and its lease is kept when it still has long to run.
    :return: what was written and the claim (its send slot taken: send at once), or no
        claim when the lane cannot be claimed now; ``None``, with nothing written, when
        the general path must decide. Without a claim, the caller gives a held lane back.
    """
    alert, channel = item.alert, item.channel
    fp = alert.fingerprint
    identity, origin = (store.identity(channel), store.origin) if store is not None else ("", "")
    if conn.execute(_LIVE_FP, (fp,)).fetchone() is not None:
        return None  # coalescing and the dedup rules for a fingerprint in flight
    status = alert.status.value
    if dedup_window > 0:
        sent = dict(conn.execute(_SENT, (fp, channel)).fetchall())
        if sent and is_duplicate(status, sent, now, dedup_window):
            return Enqueued(channel, key, fp, Outcome.DEDUPLICATED), None
    row = conn.execute(_CHANNEL, (channel, channel)).fetchone()
    if row is not None and row[7]:
        return None  # older work on the channel goes first
    if row is None:
        held, channel_row = False, (channel, *_FRESH_CHANNEL)
    elif held:
        # The release taken back also closed the circuit after the last send.
        if row[2] != "closed" or row[3]:
            conn.execute(CLOSE_CIRCUIT, (channel,))
        channel_row = (channel, row[1], *_FRESH_CHANNEL[1:])
    else:
        channel_row = row[:7]
    limit = terms.rate_limits.get(channel)
    g = gate(conn, channel_row, now, limit, terms.breaker, terms.owner)
    mentions = json.dumps(list(item.mentions)) if item.mentions else "[]"
    if g.admit == 0:
        cursor = conn.execute(
            _INSERT, (key, channel, fp, status, text, mentions, "pending", now, now, now, now,
                      None, None, identity, origin),
        )  # fmt: skip
        if row is None:
            conn.execute(_NEW_CHANNEL, (channel,))
        return Enqueued(channel, key, fp, Outcome.QUEUED, cursor.lastrowid), None
    until = now + terms.lease
    cursor = conn.execute(
        _INSERT, (key, channel, fp, status, text, mentions, "inflight", now, now, now, now,
                  terms.owner, until, identity, origin),
    )  # fmt: skip
    id_ = cursor.lastrowid
    assert id_ is not None  # an INSERT's cursor holds the new row's id
    probe = terms.breaker is not None and g.admit == 1 and channel_row[2] != "closed"
    if row is None:
        conn.execute(_NEW_LEASED, (channel, terms.owner, until))
    elif not (held and row[6] - now > terms.lease / 2):  # a held lease with long to run stays
        conn.execute(LEASE_LANE, (terms.owner, until, probe, channel))
    # The gate found a free slot a moment ago in this same transaction: this takes it.
    take_slot_in(conn, channel, now, limit, id_)
    delivery = Delivery(
        id_, channel, key, fp, status, text, item.mentions, DeliveryState.INFLIGHT, 0, now,
        None, now, now, now, False, terms.owner, until, identity, origin, loaded=alert,
    )  # fmt: skip
    enqueued = Enqueued(channel, key, fp, Outcome.QUEUED, id_)
    return enqueued, Claim(channel, (delivery,), probe, started=True)
