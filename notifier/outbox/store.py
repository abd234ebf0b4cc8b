"""The outbox's hot path: write deliveries, claim due ones, record how each attempt went.

Ordering: per alert. A claim takes the channel's *lane lease* and its due deliveries; a
delivery not due yet (waiting out its backoff) holds back only the later deliveries of
its own alert (fingerprint), so a resolution never overtakes its firing and different
alerts never wait for each other.

Every method is one short transaction, so processes sharing the file see each other's
claims, sends and circuit changes at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from notifier.filemodes import DIR_MODE, FILE_MODE
from notifier.kinds import RateLimit
from notifier.models import Outcome, key_of
from notifier.outbox.admin import AdminMixin
from notifier.outbox.attempts import AttemptsMixin, give_back, lane_key
from notifier.outbox.claiming import (
    CHANNELS,
    CHANNELS_NAMED,
    EARLIEST,
    SELECT_IDS,
    ClaimTerms,
    claim_channel,
    start_first,
)
from notifier.outbox.database import Database
from notifier.outbox.gates import Wake, gate
from notifier.outbox.policy import CircuitBreaker, is_duplicate
from notifier.outbox.records import Claim, Delivery, Enqueued, NewDelivery
from notifier.outbox.single import write_and_claim_one

# Key lists travel as one JSON array parameter (json_each), never spliced into SQL.
_INSERT = (
    "INSERT INTO deliveries (idempotency_key, channel, fingerprint, status, alert, mentions,"
    " state, next_attempt_at, created_at, enqueued_at, updated_at, channel_identity, config)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)"
)
# Queries on live rows repeat the partial indexes' WHERE text (schema.LIVE) exactly.
_LIVE_FPS = (
    "SELECT fingerprint, channel, idempotency_key, id FROM deliveries"
    " WHERE state IN ('pending', 'inflight') AND fingerprint IN (SELECT value FROM json_each(?))"
)
_SENT_FPS = (
    "SELECT fingerprint, channel, status, sent_at FROM dedup"
    " WHERE fingerprint IN (SELECT value FROM json_each(?))"
)
# One encoder for every alert: json.dumps with options builds a new one per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


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
        prepared = self._prepare(items)
        if not prepared:
            return []
        with self.db.write("queueing deliveries") as conn:
            return self._enqueue(conn, prepared, now, dedup_window)

    @staticmethod
    def _prepare(items: Iterable[NewDelivery]) -> list[tuple[NewDelivery, str, str]]:
        """Validate and serialise before any transaction, so a bad item changes nothing."""
        # Per alert: its JSON, and the parts of its key (isoformat() is not free).
        alerts: dict[int, tuple[str, str, str, str]] = {}
        prepared: list[tuple[NewDelivery, str, str]] = []
        for item in items:
            if not isinstance(item, NewDelivery):
                raise TypeError(f"enqueue_many takes NewDelivery items, got {item!r}")
            known = alerts.get(id(item.alert))
            if known is None:
                data = item.alert.to_dict()
                known = alerts[id(item.alert)] = (
                    _ENCODE(data),
                    data["fingerprint"],
                    data["status"],
                    data["starts_at"],
                )
            text, fingerprint, status, starts_at = known
            prepared.append((item, key_of(fingerprint, status, starts_at, item.channel), text))
        return prepared

    def enqueue_and_claim(
        self, items: Iterable[NewDelivery], *, now: float, dedup_window: float, terms: ClaimTerms
    ) -> tuple[list[Enqueued], list[Claim]]:
        """Write deliveries and, in the same transaction, claim their channels' lanes.

        Each channel written to is claimed as :meth:`claim_due` would (its due prefix,
        older deliveries first, none while another worker holds it), so order and rate
        limits hold. When a single lane is claimed, its first send slot is taken too:
        the caller sends it at once. Claimed deliveries written now carry their
        in-memory alert.
        """
        prepared = self._prepare(items)
        if not prepared:
            return [], []
        # This process's lane on the channel, idle since its last send, whose release
        # is still pending: the single path goes on under it rather than give it back.
        lane = lane_key(prepared[0][0].channel, terms.owner) if len(prepared) == 1 else None
        held = lane is not None and self.db.withdraw(lane)
        try:
            return self._write_and_claim(prepared, now, dedup_window, terms, held)
        except BaseException:
            # Still owed: the lane goes back as the withdrawn write would have.
            if held and lane is not None:
                self.db.defer(give_back(lane[1], terms.owner), lane)
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
                if held and claim is None:  # not going on under it: give the lane back
                    give_back(prepared[0][0].channel, terms.owner)(conn)
                if done is not None:
                    return [done[0]], [claim] if claim is not None else []
            enqueued = self._enqueue(conn, prepared, now, dedup_window)
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

    def _enqueue(
        self,
        conn: sqlite3.Connection,
        prepared: list[tuple[NewDelivery, str, str]],
        now: float,
        window: float,
    ) -> list[Enqueued]:
        # Queued deliveries of these fingerprints: the same key is not queued twice, and
        # a fingerprint with one queued is not judged a duplicate until that is settled.
        live: dict[str, int] = {}
        busy: set[tuple[str, str]] = set()
        fps = _json({item.alert.fingerprint for item, _, _ in prepared})
        for fp, channel, key, id_ in conn.execute(_LIVE_FPS, (fps,)):
            live[key] = id_
            busy.add((fp, channel))
        sent: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        if window > 0:
            for fp, channel, status, at in conn.execute(_SENT_FPS, (fps,)):
                sent[(fp, channel)][status] = at
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
            rows.append((key, channel, fp, status, text, mentions, now, now, now, now,
                         self.identity(channel), self.origin))  # fmt: skip
        if rows:
            conn.executemany(_INSERT, rows)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            if last - first + 1 != len(rows):
                raise RuntimeError("outbox ids were not handed out consecutively")
            names = sorted({row[1] for row in rows})
            conn.executemany(
                "INSERT OR IGNORE INTO channels (name) VALUES (?)", [(n,) for n in names]
            )
        return out

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
            for row in conn.execute(SELECT_IDS, (_json(ids),)):
                found[row[0]] = Delivery.from_row(row)
        return found
