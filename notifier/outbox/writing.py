"""Writing deliveries: validated and encoded before the transaction, then inserted,
coalesced (the same key already queued) or deduplicated (sent within the window).

The common dispatch writes one delivery to a channel with nothing queued: no repeat of
its fingerprint in flight, no older backlog, the channel free. :func:`write_and_claim_one`
reads all it needs in one statement (:data:`LOOK`) and inserts the delivery already in
flight under the channel lease, which one more statement takes: 3 statements between
``BEGIN`` and ``COMMIT``. In a stream of dispatches to one channel the lease is still
this process's from the send before (``held``) and is kept, not taken again: 2.
Whenever that read finds anything else (a live delivery of the fingerprint or on the
channel), it returns ``None`` having written nothing, and :func:`enqueue` with a claim
(:mod:`notifier.outbox.claiming`) takes over in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from notifier.models import Outcome
from notifier.outbox.attempts import SENT_PARTS, SENT_ROWS
from notifier.outbox.channels import (
    CHANNELS_NAMED,
    CLOSE_CIRCUIT,
    FRESH,
    NEW_CHANNEL,
    TAKE_LEASE,
    OwnChannels,
    gate,
    own_rows,
    take_slot_in,
)
from notifier.outbox.claiming import ClaimTerms, claim_channel, give_back, lease_key, start_first
from notifier.outbox.policy import is_duplicate
from notifier.outbox.records import (
    Claim,
    Delivery,
    DeliveryState,
    Enqueued,
    NewDelivery,
    group_json,
    json_list,
    prepare,
)

PENDING, INFLIGHT = DeliveryState.PENDING.value, DeliveryState.INFLIGHT.value
# Every new row, whichever path writes it.
_INSERT = (
    "INSERT INTO deliveries (idempotency_key, channel, fingerprint, status, alert, mentions,"
    " state, next_attempt_at, created_at, enqueued_at, updated_at, lease_owner,"
    " lease_expires, channel_identity, config, alert_group) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?, ?, ?, ?, ?)"
)
# Queries on live rows repeat the partial indexes' WHERE text (schema.LIVE) exactly.
LIVE_FPS = (
    "SELECT fingerprint, channel, channel_identity, idempotency_key, id FROM deliveries"
    " WHERE state IN ('pending', 'inflight') AND fingerprint IN (SELECT value FROM json_each(?))"
)
_SENT_FPS = (  # built from constants
    "SELECT fingerprint, channel, identity, status, max(at) FROM"  # noqa: S608
    f" ({SENT_ROWS.format(where='fingerprint IN (SELECT value FROM json_each(:fps))')})"
    " GROUP BY fingerprint, channel, identity, status"
)


def enqueue(
    conn: sqlite3.Connection,
    prepared: list[tuple[NewDelivery, str, str]],
    now: float,
    window: float,
    identity: Callable[[str], str],
    origin: str,
) -> list[Enqueued]:
    """Write ``prepared`` in the caller's transaction: new ones inserted, a key already
    queued coalesced, one sent within ``window`` deduplicated."""
    # Queued deliveries of these fingerprints: the same key is not queued twice, and
    # a fingerprint with one queued is not judged a duplicate until that is settled.
    # Rows of another configuration's same-named channel are not ours (rows from before
    # identities were kept are everyone's, as claiming.HEAD has it).
    live: dict[str, int] = {}
    busy: set[tuple[str, str]] = set()
    fps = json_list({item.alert.fingerprint for item, _, _ in prepared})
    for fp, channel, written_as, key, id_ in conn.execute(LIVE_FPS, (fps,)):
        if written_as in (identity(channel), ""):
            live[key] = id_
            busy.add((fp, channel))
    sent: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    if window > 0:
        for fp, channel, sent_as, status, at in conn.execute(_SENT_FPS, {"fps": fps}):
            if sent_as in (identity(channel), ""):
                times = sent[(fp, channel)]
                times[status] = max(at, times.get(status, at))
    # Inside our write transaction each new row gets the largest id + 1, so the ids
    # are known before the insert (and checked after it).
    first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM deliveries").fetchone()[0]
    out: list[Enqueued] = []
    rows: list[tuple[Any, ...]] = []
    id_of_key: dict[str, int] = {}
    queued, deduplicated = Outcome.QUEUED, Outcome.DEDUPLICATED
    for item, key, text in prepared:
        alert, channel = item.alert, item.channel
        fp = alert.fingerprint
        if key in live or key in id_of_key:
            id_ = live.get(key) or id_of_key[key]
            out.append(Enqueued(channel, key, fp, queued, id_, True))
            continue
        status = alert.status.value
        pair = (fp, channel)
        if pair in sent and pair not in busy and is_duplicate(status, sent[pair], now, window):
            out.append(Enqueued(channel, key, fp, deduplicated))
            continue
        id_of_key[key] = id_ = first + len(rows)
        out.append(Enqueued(channel, key, fp, queued, id_))
        mentions = json.dumps(list(item.mentions)) if item.mentions else "[]"
        rows.append((key, channel, fp, status, text, mentions, PENDING, now, now, now, now,
                     None, None, identity(channel), origin, group_json(item)))  # fmt: skip
    if rows:
        conn.executemany(_INSERT, rows)
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        if last - first + 1 != len(rows):
            raise RuntimeError("outbox ids were not handed out consecutively")
        names = sorted({row[1] for row in rows})
        conn.executemany(NEW_CHANNEL, [(n, identity(n)) for n in names])
    return out


# Each source of SENT_PARTS as "status at,status at,...", for this process's identity:
# two scalar subqueries cost the fast path less than their union.
_SENT_TEXT = [  # built from constants
    f"CASE WHEN :dedup THEN (SELECT group_concat(printf('%s %.6f', status, at)) FROM"  # noqa: S608
    f" ({part.format(where='fingerprint = :fp AND channel = :channel')})"
    " WHERE identity IN (:identity, '')) END"
    for part in SENT_PARTS
]
# All the fast path reads, in one statement: whether the fingerprint has a live delivery,
# when its statuses were last sent on the channel (with a dedup window), the channel's
# row (all NULL when it has none) and whether it has live deliveries. Live rows repeat
# the partial indexes' WHERE text (schema.LIVE) exactly.
LOOK = (  # built from constants
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE state IN ('pending', 'inflight')"  # noqa: S608
    f" AND fingerprint = :fp), {_SENT_TEXT[0]}, {_SENT_TEXT[1]},"
    " c.name, c.blocked_until, c.circuit, c.failures, c.open_until, c.lease_owner,"
    " c.lease_expires, EXISTS (SELECT 1 FROM deliveries WHERE channel = :channel"
    " AND state IN ('pending', 'inflight'))"
    " FROM (SELECT 1) LEFT JOIN channels AS c ON c.name = :channel AND c.identity = :identity"
)


def _latest(sent: str) -> dict[str, float]:
    """When each status was last sent, from LOOK's ``"status at,status at,..."``."""
    latest: dict[str, float] = {}
    for part in sent.split(","):
        status, at = part.split(" ")
        latest[status] = max(float(at), latest.get(status, 0.0))
    return latest


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
    store: WritingMixin | None = None,
) -> tuple[Enqueued, Claim | None] | None:
    """Write ``item`` (its alert encoded as ``text``) and claim it when its channel is free.

    :param held: ``terms.owner`` still holds the channel's lease from its last send, whose
        release it took back (:func:`~notifier.outbox.claiming.lease_key`): the channel
        is idle and ours, and its lease is kept when it still has long to run.
    :return: what was written and the claim (its send slot taken: send at once), or no
        claim when the channel cannot be claimed now; ``None``, with nothing written, when
        the general path must decide. Without a claim, the caller gives a held lease back.
    """
    alert, channel = item.alert, item.channel
    fp = alert.fingerprint
    identity, origin = (store.identity(channel), store.origin) if store is not None else ("", "")
    look = {"fp": fp, "channel": channel, "identity": identity, "dedup": dedup_window > 0}
    live, kept, recorded, *row, busy = conn.execute(LOOK, look).fetchone()
    if live:
        return None  # coalescing and the dedup rules for a fingerprint in flight
    status = alert.status.value
    sent = ",".join(text for text in (kept, recorded) if text)
    if sent and is_duplicate(status, _latest(sent), now, dedup_window):
        return Enqueued(channel, key, fp, Outcome.DEDUPLICATED), None
    if busy:
        return None  # older work on the channel goes first
    row = row if row[0] is not None else None
    if row is None:
        held, channel_row = False, (channel, *FRESH, identity)
    elif held:
        # The release taken back also closed the circuit after the last send.
        if row[2] != "closed" or row[3]:
            conn.execute(CLOSE_CIRCUIT, (channel, identity))
        channel_row = (channel, row[1], *FRESH[1:], identity)
    else:
        channel_row = (*row, identity)
    limit = terms.rate_limits.get(channel)
    g = gate(conn, channel_row, now, limit, terms.breaker, terms.owner)
    mentions = json.dumps(list(item.mentions)) if item.mentions else "[]"
    group = group_json(item)
    if g.admit == 0:
        cursor = conn.execute(
            _INSERT, (key, channel, fp, status, text, mentions, PENDING, now, now, now, now,
                      None, None, identity, origin, group),
        )  # fmt: skip
        if row is None:
            conn.execute(NEW_CHANNEL, (channel, identity))
        return Enqueued(channel, key, fp, Outcome.QUEUED, cursor.lastrowid), None
    until = now + terms.lease
    cursor = conn.execute(
        _INSERT, (key, channel, fp, status, text, mentions, INFLIGHT, now, now, now, now,
                  terms.owner, until, identity, origin, group),
    )  # fmt: skip
    id_ = cursor.lastrowid
    assert id_ is not None  # an INSERT's cursor holds the new row's id
    probe = terms.breaker is not None and g.admit == 1 and channel_row[2] != "closed"
    if row is None or not (held and row[6] - now > terms.lease / 2):
        # A held lease with long to run stays.
        args = {"name": channel, "identity": identity, "owner": terms.owner, "until": until}
        conn.execute(TAKE_LEASE, {**args, "probe": probe})
    # The gate found a free slot a moment ago in this same transaction: this takes it.
    take_slot_in(conn, channel, identity, now, limit, id_)
    delivery = Delivery(
        id_, channel, key, fp, status, text, item.mentions, DeliveryState.INFLIGHT, 0, now,
        None, now, now, now, False, terms.owner, until, identity, origin,
        group_json=group, loaded=alert,
    )  # fmt: skip
    enqueued = Enqueued(channel, key, fp, Outcome.QUEUED, id_)
    return enqueued, Claim(channel, (delivery,), probe, started=True)


class WritingMixin(OwnChannels):
    origin: str  # the configuration file, stamped on what it writes

    def enqueue_many(
        self, items: Iterable[NewDelivery], *, now: float, dedup_window: float = 0.0
    ) -> list[Enqueued]:
        """Write deliveries in one transaction; one :class:`Enqueued` per item, in order.

        A delivery whose idempotency key is already queued is not written twice
        (``coalesced``); one sent within ``dedup_window`` is not written at all.
        Everything is validated and serialised before the transaction starts, so a bad
        item leaves the outbox untouched.
        """
        prepared = prepare(items)
        if not prepared:
            return []
        with self.db.write("queueing deliveries") as conn:
            return enqueue(conn, prepared, now, dedup_window, self.identity, self.origin)

    def enqueue_and_claim(
        self, items: Iterable[NewDelivery], *, now: float, dedup_window: float, terms: ClaimTerms
    ) -> tuple[list[Enqueued], list[Claim]]:
        """Write deliveries and, in the same transaction, claim their channels.

        Each channel written to is claimed as :meth:`claim_due` would (its due prefix,
        older deliveries first, none while another worker holds it), so order and rate
        limits hold. When a single channel is claimed, its first send slot is taken too:
        the caller sends it at once. Claimed deliveries written now carry their
        in-memory alert.
        """
        prepared = prepare(items)
        if not prepared:
            return [], []
        # This process's lease on the channel, idle since its last send, whose release
        # is still pending: the single path goes on under it rather than give it back.
        lease = lease_key(prepared[0][0].channel, terms.owner) if len(prepared) == 1 else None
        held = lease is not None and self.db.withdraw(lease)
        try:
            return self._write_and_claim(prepared, now, dedup_window, terms, held)
        except BaseException:
            # Still owed: the lease goes back as the withdrawn write would have.
            if held and lease is not None:
                back = give_back(lease[1], self.identity(lease[1]), terms.owner)
                self.db.defer(back, lease)
            raise

    def _write_and_claim(
        self,
        prepared: list[tuple[NewDelivery, str, str]],
        now: float,
        dedup_window: float,
        terms: ClaimTerms,
        held: bool,
    ) -> tuple[list[Enqueued], list[Claim]]:
        with self.db.write("queueing deliveries") as conn:
            if len(prepared) == 1:
                args = (*prepared[0], now, dedup_window, terms)
                done = write_and_claim_one(conn, *args, held=held, store=self)
                claim = done[1] if done is not None else None
                if held and claim is None:  # not going on under it: give the channel lease back
                    channel = prepared[0][0].channel
                    give_back(channel, self.identity(channel), terms.owner)(conn)
                if done is not None:
                    return [done[0]], [claim] if claim is not None else []
            enqueued = enqueue(conn, prepared, now, dedup_window, self.identity, self.origin)
            written = {e.id: item.alert for e, (item, _, _) in zip(enqueued, prepared, strict=True)
                       if e.id is not None and not e.coalesced}  # fmt: skip
            names = sorted({e.channel for e in enqueued if e.id is not None})
            claims = []
            rows = conn.execute(CHANNELS_NAMED, (json_list(names),)).fetchall()
            for row in own_rows(rows, terms.identities):
                claim = claim_channel(conn, row, now, now, terms, written)
                if claim is not None:
                    claims.append(claim)
            if len(claims) == 1:
                claims[0] = start_first(conn, claims[0], now, terms)
        return enqueued, claims
