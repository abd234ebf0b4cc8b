"""The outbox's hot path: write deliveries, claim due ones, record how each attempt went.

Ordering: per alert. A claim takes the channel's *channel lease* and its due deliveries; a
delivery not due yet (waiting out its backoff) holds back only the later deliveries of
its own alert (fingerprint), so a resolution never overtakes its firing and different
alerts never wait for each other.

Every method is one short transaction, so processes sharing the file see each other's
claims, sends and circuit changes at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from notifier.filemodes import DIR_MODE, FILE_MODE
from notifier.kinds import RateLimit
from notifier.outbox.admin import AdminMixin
from notifier.outbox.attempts import AttemptsMixin, give_back, lease_key
from notifier.outbox.claiming import (
    CHANNELS,
    CHANNELS_NAMED,
    EARLIEST,
    SELECT_IDS,
    ClaimTerms,
    Wake,
    claim_channel,
    gate,
    start_first,
)
from notifier.outbox.database import Database
from notifier.outbox.policy import CircuitBreaker
from notifier.outbox.records import Claim, Delivery, Enqueued, NewDelivery
from notifier.outbox.writing import enqueue, prepare, write_and_claim_one


def _json(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


class OutboxStore(AttemptsMixin, AdminMixin):
    """Durable deliveries in one SQLite file; see :mod:`notifier.outbox` for the model."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # The channels this process has, {name: identity}, stamped on what it writes;
        # None (a bare store): deliveries are written without an identity.
        self.identities: Mapping[str, str] | None = None
        self.origin = ""  # the configuration file, stamped on what it writes

    def serve(self, identities: Mapping[str, str], origin: str = "") -> None:
        """Write deliveries for these channels, from the configuration ``origin``."""
        self.identities = dict(identities)
        self.origin = origin

    def identity(self, channel: str) -> str:
        return (self.identities or {}).get(channel, "")

    @classmethod
    def open(
        cls,
        path: str | None = None,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "normal",
        file_mode: str = FILE_MODE,
        dir_mode: str = DIR_MODE,
    ) -> OutboxStore:
        """Open (creating and migrating as needed) the outbox at ``path``; see
        :meth:`Database.open`."""
        db = Database.open(
            path,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            file_mode=file_mode,
            dir_mode=dir_mode,
        )
        return cls(db)

    @property
    def path(self) -> str:
        return self.db.path

    def close(self) -> None:
        self.db.close()

    # -- writing -----------------------------------------------------------------------

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
                self.db.defer(give_back(lease[1], terms.owner), lease)
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
                    give_back(prepared[0][0].channel, terms.owner)(conn)
                if done is not None:
                    return [done[0]], [claim] if claim is not None else []
            enqueued = enqueue(conn, prepared, now, dedup_window, self.identity, self.origin)
            written = {e.id: item.alert for e, (item, _, _) in zip(enqueued, prepared, strict=True)
                       if e.id is not None and not e.coalesced}  # fmt: skip
            names = sorted({e.channel for e in enqueued if e.id is not None})
            claims = []
            rows = conn.execute(CHANNELS_NAMED, (_json(names),)).fetchall()
            for row in rows:
                claim = claim_channel(conn, row, now, now, terms, written)
                if claim is not None:
                    claims.append(claim)
            if len(claims) == 1:
                claims[0] = start_first(conn, claims[0], now, terms)
        return enqueued, claims

    # -- claiming ----------------------------------------------------------------------

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
            query = f"{CHANNELS} FROM channels ORDER BY name"
        else:
            query, params = CHANNELS_NAMED, (json.dumps(sorted(set(channels))),)
        with self.db.write("claiming due deliveries") as conn:
            for row in conn.execute(query, params).fetchall():
                claim = claim_channel(conn, row, now, due_by, terms)
                if claim is not None:
                    claims.append(claim)
        return claims

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
            for row in conn.execute(f"{CHANNELS} FROM channels ORDER BY name").fetchall():
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

    def get(self, ids: Iterable[int]) -> dict[int, Delivery]:
        """The stored deliveries with these ids (missing ones are left out)."""
        found: dict[int, Delivery] = {}
        with self.db.read("reading deliveries") as conn:
            for row in Delivery.read(conn, SELECT_IDS, (_json(ids),)):
                found[row["id"]] = Delivery.from_row(row)
        return found
