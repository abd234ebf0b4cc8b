"""The outbox file's operations in one place, and what operators and monitors see.

:class:`OutboxStore` joins the operations of writing (:mod:`~.writing`), claiming and
leases (:mod:`~.claiming`), channel state and send slots (:mod:`~.channels`) and
recording attempts (:mod:`~.attempts`), and holds the operators' own: counts, dead
letters, retry, purge, pruning. Every method is one short transaction, so processes
sharing the file see each other's claims, sends and circuit changes at once.

:class:`MonitorViews` is the engine's answers to a process that accepts deliveries and
delivers them itself (``notifier serve``), which keep it away from the file and tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from notifier.errors import OutboxError
from notifier.filemodes import DIR_MODE, FILE_MODE
from notifier.outbox.attempts import AttemptsMixin
from notifier.outbox.channels import ChannelsMixin
from notifier.outbox.claiming import ClaimingMixin
from notifier.outbox.database import Database
from notifier.outbox.records import DELIVERY_COLUMNS, SELECT_IDS, Delivery, DeliveryState, json_list
from notifier.outbox.writing import WritingMixin

# Dedup rows are kept at least this long, so "a resolved alert is sent once" holds for a
# day even with a short dedup window.
DEDUP_MEMORY = 86_400.0


def dedup_memory(now: float, dedup_window: float) -> float:
    """The earliest send the dedup window may still ask about."""
    return now - max(dedup_window, DEDUP_MEMORY)


# ":ids" is a JSON array of ids, or NULL for every one; nothing is spliced into SQL.
_COUNTS = (
    "SELECT channel, state, count(*) FROM deliveries GROUP BY channel, state"
    " ORDER BY channel, state"
)
_DEAD = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'dead'"  # noqa: S608 (constants)
    " AND (:channel IS NULL OR channel = :channel) ORDER BY id LIMIT :limit"
)
_RETRY = (
    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = :now,"
    " enqueued_at = :now, updated_at = :now WHERE state = 'dead'"
    " AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))"
)
_CHANNELS = (
    "INSERT OR IGNORE INTO channels (name, identity)"
    " SELECT DISTINCT channel, channel_identity FROM deliveries"
    " WHERE state = 'pending' AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))"
)
# The deliveries a purge deletes, by what it was given. By age (the sweep), with no
# index of finished deliveries (schema version 5): ids grow with time, so it walks the
# ids up to the first delivery written since the cut-off and reads little more than it
# deletes; and it keeps the newest row so that no id is given out twice (ids are the
# largest id + 1, schema version 2).
_PURGED = {
    "ids": "id IN (SELECT value FROM json_each(:ids)) AND state = :state"
    " AND (:before IS NULL OR updated_at < :before)",
    "age": "id < coalesce((SELECT id FROM deliveries WHERE created_at >= :before"
    " ORDER BY id LIMIT 1), (SELECT max(id) FROM deliveries))"
    " AND state = :state AND updated_at < :before",
    "all": "state = :state",
}
_PURGE = "DELETE FROM deliveries WHERE {where}"
# Before delivered rows go, the sends they record that the dedup window may still ask
# about move to the dedup table (see attempts.SENT_ROWS).
_REMEMBER = (
    "INSERT INTO dedup (fingerprint, status, channel, identity, sent_at)"
    " SELECT fingerprint, status, channel, channel_identity, max(updated_at) FROM deliveries"
    " WHERE {where} AND deduplicated = 0 AND updated_at > :since"
    " GROUP BY fingerprint, status, channel, channel_identity"
    " ON CONFLICT DO UPDATE SET sent_at = max(sent_at, excluded.sent_at)"
)


_CIRCUITS = "SELECT name, identity, circuit FROM channels ORDER BY name, identity"
_LIVE_BY_IDENTITY = (
    "SELECT channel, channel_identity, config, count(*) FROM deliveries"
    " WHERE state IN ('pending', 'inflight') GROUP BY channel, channel_identity, config"
    " ORDER BY channel, config"
)


def _ids(ids: Sequence[int] | None) -> str | None:
    return None if ids is None else json.dumps([int(i) for i in ids])


class OutboxStore(WritingMixin, ClaimingMixin, ChannelsMixin, AttemptsMixin):
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

    def get(self, ids: Iterable[int]) -> dict[int, Delivery]:
        """The stored deliveries with these ids (missing ones are left out)."""
        found: dict[int, Delivery] = {}
        with self.db.read("reading deliveries") as conn:
            for row in Delivery.read(conn, SELECT_IDS, (json_list(ids),)):
                found[row["id"]] = Delivery.from_row(row)
        return found

    # -- what operators see and do --------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """``{channel: {state: number}}`` over every delivery kept."""
        found: dict[str, dict[str, int]] = {}
        with self.db.read("counting deliveries") as conn:
            for channel, state, number in conn.execute(_COUNTS):
                found.setdefault(channel, {})[state] = number
        return found

    def waiting_elsewhere(self, identities: Mapping[str, str]) -> list[tuple[str, str, int]]:
        """``(channel, config, waiting)`` for queued deliveries of channels that the
        configuration with these ``{channel: identity}`` does not have, or has with
        other settings: another configuration's process delivers them."""
        found = []
        with self.db.read("reading the queue") as conn:
            for channel, identity, config, number in conn.execute(_LIVE_BY_IDENTITY):
                mine = identities.get(channel)
                if mine is not None and identity in (mine, ""):
                    continue
                found.append((channel, config or "unknown", number))
        return found

    def dead_letters(self, *, channel: str | None = None, limit: int = 100) -> list[Delivery]:
        """Dead letters, oldest first, with their (redacted) last errors."""
        args = {"channel": channel, "limit": limit}
        with self.db.read("listing dead letters") as conn:
            rows = Delivery.read(conn, _DEAD, args)
        return [Delivery.from_row(r) for r in rows]

    def retry_dead(self, now: float, ids: Sequence[int] | None = None) -> int:
        """Queue dead letters again (all of them when ``ids`` is ``None``).

        They start over: attempts at 0, due now, ``max_age`` counted from now. Each keeps
        its id, so it takes its original place in its channel's order.
        """
        args = {"now": now, "ids": _ids(ids)}
        with self.db.write("retrying dead letters") as conn:
            moved = conn.execute(_RETRY, args).rowcount
            conn.execute(_CHANNELS, {"ids": args["ids"]})
        return moved

    def purge(
        self,
        state: DeliveryState = DeliveryState.DEAD,
        *,
        ids: Sequence[int] | None = None,
        older_than: float | None = None,
        remember_since: float = 0.0,
    ) -> int:
        """Delete finished deliveries: dead letters by default, or delivered ones.

        :param older_than: only those last updated before this time.
        :param remember_since: delivered ones sent since then stay known to the dedup
            window (the default: all of them).
        """
        state = DeliveryState(state)
        if state not in (DeliveryState.DEAD, DeliveryState.DELIVERED):
            raise ValueError("only dead and delivered deliveries can be purged")
        args = {"state": state.value, "ids": _ids(ids), "before": older_than}
        where = _PURGED["ids" if ids is not None else "all" if older_than is None else "age"]
        with self.db.write("purging deliveries") as conn:
            if state is DeliveryState.DELIVERED:
                conn.execute(_REMEMBER.format(where=where), {**args, "since": remember_since})
            return conn.execute(_PURGE.format(where=where), args).rowcount

    def prune(self, now: float, *, dedup_window: float, longest_window: float) -> None:
        """Forget send times older than any rate window and dedup rows past their use."""
        with self.db.write("pruning") as conn:
            conn.execute("DELETE FROM sends WHERE at <= ?", (now - longest_window,))
            conn.execute("DELETE FROM dedup WHERE sent_at <= ?", (dedup_memory(now, dedup_window),))


class MonitorViews:
    """The engine's answers about its outbox, for servers and monitors."""

    store: OutboxStore

    @property
    def path(self) -> str:
        """The outbox file (``:memory:`` for one in memory)."""
        return self.store.path

    def writable(self) -> str | None:
        """Why a delivery could not be written now, or ``None`` when it could.

        Takes the write lock in an empty transaction, as every write must first, so a
        file another process holds beyond ``busy_timeout``, a full disk or a file moved
        away are each answered with their one-line reason.
        """
        try:
            with self.store.db.write("checking it is writable"):
                pass
        except OutboxError as exc:
            return str(exc)
        return None

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        """``{channel: {state: number}}`` of every delivery the file keeps, whichever
        process wrote or delivered it.

        :raises OutboxError: the outbox cannot be read.
        """
        return self.store.counts()

    def circuit_states(self) -> dict[str, str]:
        """``{channel: "closed" | "open" | "half_open"}``: each channel's circuit breaker
        as the file holds it, so every process sharing it reads the same. A channel's
        state is its identity's (see :mod:`notifier.identity`): for a channel of this
        engine's, its own (closed until it has any).

        :raises OutboxError: the outbox cannot be read.
        """
        with self.store.db.read("reading circuit states") as conn:
            rows = conn.execute(_CIRCUITS).fetchall()
        mine = self.store.identities
        found: dict[str, str] = {}
        for name, identity, circuit in rows:
            own = "" if mine is None else mine.get(name)
            if own is None:  # a channel this engine does not have: as the file holds it
                found.setdefault(name, circuit)
            elif identity == own:
                found[name] = circuit
            else:
                found.setdefault(name, "closed")  # no state of its own yet
        return found
