"""What the outbox stores: delivery states, new deliveries (validated and encoded by
:func:`prepare` before any transaction) and stored ones, enqueue results, claims.

A *delivery* is one alert on one channel. Its idempotency key is a stable hash of what
makes it the same notification (fingerprint, status, channel, start time), so every retry
of it, and a second enqueue of the very same alert, carries the same key.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from notifier.groups import AlertGroup
from notifier.models import Alert, Outcome, Receipt, delivery_key, key_of


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    INFLIGHT = "inflight"  # claimed by a worker under a lease
    DELIVERED = "delivered"  # sent (or recognised as a duplicate); kept for a while
    DEAD = "dead"  # failed permanently: a dead letter for the operator


def idempotency_key(alert: Alert, channel: str) -> str:
    """The stable key of ``alert`` on ``channel``: the same for every retry and re-send.

    The dispatcher's own :func:`~notifier.models.delivery_key`, so a delivery carries
    the same key whether or not it went through the outbox.
    """
    return delivery_key(alert, channel)


def _channel(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a delivery needs a channel name, got {value!r}")


def _alert(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Alert):
        raise TypeError(f"a delivery needs an Alert, got {type(value).__name__}")


def _group(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, AlertGroup):
        raise TypeError(f"a delivery's group is an AlertGroup, got {type(value).__name__}")


def group_json(item: NewDelivery) -> str | None:
    """The group ``item``'s message tells, as stored (``None``: a lone alert)."""
    return None if item.group is None else _ENCODE(item.group.to_dict())


def _mentions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@attrs.frozen
class NewDelivery:
    """An alert to write to the outbox for one channel.

    :param mentions: people the matching route asks to notify; kept for every retry.
    :param group: the alerts ``alert`` stands for, when it is a group's message (an
        Alertmanager notification's): kept, and shown to the channel's template as
        ``group``.
    """

    alert: Alert = attrs.field(validator=_alert)
    channel: str = attrs.field(validator=_channel)
    mentions: tuple[str, ...] = attrs.field(default=(), converter=_mentions)
    group: AlertGroup | None = attrs.field(
        default=None, kw_only=True, validator=attrs.validators.optional(_group)
    )

    @property
    def key(self) -> str:
        return idempotency_key(self.alert, self.channel)


# One encoder for every alert: json.dumps with options builds a new one per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def prepare(items: Iterable[NewDelivery]) -> list[tuple[NewDelivery, str, str]]:
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


@attrs.frozen
class Enqueued:
    """What became of one :class:`NewDelivery`.

    :param id: the stored delivery (``None`` when deduplicated: nothing was written).
    :param outcome: ``QUEUED`` (written, or the same delivery was already queued:
        ``coalesced``) or ``DEDUPLICATED`` (sent within the dedup window).
    """

    channel: str
    key: str
    fingerprint: str
    outcome: Outcome
    id: int | None = None
    coalesced: bool = False


@attrs.frozen
class Delivery:
    """A delivery as stored. ``alert_json`` is parsed on demand by :meth:`alert`."""

    id: int
    channel: str
    key: str
    fingerprint: str
    status: str
    alert_json: str = attrs.field(repr=False)
    mentions: tuple[str, ...]
    state: DeliveryState = attrs.field(converter=DeliveryState)
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    enqueued_at: float  # creation, or the operator's last retry: max_age counts from here
    updated_at: float
    deduplicated: bool = False
    lease_owner: str | None = None
    lease_expires: float | None = None
    channel_identity: str = ""  # see notifier.identity; "" when written before
    config: str = ""  # the configuration file that wrote it, when known
    delivered_by: str | None = None  # the digest that delivered it, when one did
    group_json: str | None = attrs.field(default=None, repr=False)  # see NewDelivery.group
    # The Alert this process just wrote, when it has it: sent as is, not decoded again.
    loaded: Alert | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_row(cls, row: sqlite3.Row, loaded: Alert | None = None) -> Delivery:
        """The delivery in ``row``, a :data:`DELIVERY_COLUMNS` row read by name."""
        try:
            mentions = tuple(str(m) for m in json.loads(row["mentions"]))
        except (TypeError, ValueError):
            mentions = ()
        return cls(
            id=row["id"],
            channel=row["channel"],
            key=row["idempotency_key"],
            fingerprint=row["fingerprint"],
            status=row["status"],
            alert_json=row["alert"],
            mentions=mentions,
            state=row["state"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            enqueued_at=row["enqueued_at"],
            updated_at=row["updated_at"],
            deduplicated=bool(row["deduplicated"]),
            lease_owner=row["lease_owner"],
            lease_expires=row["lease_expires"],
            channel_identity=row["channel_identity"],
            config=row["config"],
            delivered_by=row["delivered_by"],
            group_json=row["alert_group"],
            loaded=loaded,
        )

    @staticmethod
    def read(conn: sqlite3.Connection, query: str, params: Any) -> list[sqlite3.Row]:
        """The rows of ``query`` (which selects :data:`DELIVERY_COLUMNS`), by name."""
        cursor = conn.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(query, params).fetchall()

    def alert(self) -> Alert:
        """The stored alert; ``ValueError`` when the stored JSON is not a valid alert."""
        if self.loaded is not None:
            return self.loaded
        try:
            data = json.loads(self.alert_json)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"stored alert is not JSON: {exc}") from exc
        return Alert.from_dict(data)

    def group(self) -> AlertGroup | None:
        """The stored group, if the alert is a group's message; ``ValueError`` when the
        stored JSON is not a valid group."""
        if self.group_json is None:
            return None
        try:
            data = json.loads(self.group_json)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"stored group is not JSON: {exc}") from exc
        return AlertGroup.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "state": self.state.value,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "idempotency_key": self.key,
            "channel_identity": self.channel_identity,
            "config": self.config,
            "delivered_by": self.delivered_by,
        }


# What every query for whole deliveries selects, read by name (Delivery.from_row).
DELIVERY_COLUMNS = (
    "id, channel, idempotency_key, fingerprint, status, alert, mentions, state, attempts,"
    " next_attempt_at, last_error, created_at, enqueued_at, updated_at, deduplicated,"
    " lease_owner, lease_expires, channel_identity, config, delivered_by, alert_group"
)

# Lists travel as one JSON array parameter (json_each), never spliced into SQL.
SELECT_IDS = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608 (constants only)
    " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
)


def json_list(values: Iterable[Any]) -> str:
    """``values`` as one JSON array, the form a list of ids or names is bound in."""
    return json.dumps(list(values))


@attrs.frozen
class Claim:
    """Deliveries of one channel claimed by one worker, to be sent in this order.

    :param probe: the channel's circuit is half-open and this single delivery tests it.
    :param digest: the deliveries are sent together as one digest message.
    :param started: the first delivery's send slot was taken with the claim (it is sent
        at once), so the claim does not start it again.
    """

    channel: str
    deliveries: tuple[Delivery, ...]
    probe: bool = False
    started: bool = False
    digest: bool = False  # folded into one digest message (see notifier.outbox.policy)


@attrs.frozen
class Round:
    """One claim-and-deliver pass: how many were claimed, and receipts by delivery id."""

    claimed: int
    receipts: Mapping[int, Receipt]


@attrs.frozen
class DrainReport:
    """What :meth:`OutboxDelivery.drain` did, by outcome, and what is still queued."""

    outcomes: Mapping[str, int]
    rounds: int
    waited: float


_OUTCOMES = {DeliveryState.DELIVERED: Outcome.DELIVERED, DeliveryState.DEAD: Outcome.FAILED}


def receipts_for(
    enqueued: Iterable[Enqueued],
    attempted: Mapping[int, Receipt],
    stored: Mapping[int, Delivery],
) -> list[Receipt]:
    """One receipt per written delivery, in order.

    A delivery attempted by this call has the receipt of that attempt; any other one is
    described by its stored state: delivered (by another worker, or before, for a
    coalesced repeat), dead, or queued with its next attempt time.
    """
    out = []
    for e in enqueued:
        if e.id is not None and e.id in attempted:
            out.append(attempted[e.id])
            continue
        receipt = Receipt(
            e.channel,
            e.outcome,
            fingerprint=e.fingerprint,
            details={"idempotency_key": e.key, "delivery_id": e.id},
        )
        d = stored.get(e.id) if e.id is not None else None
        if d is not None:
            outcome = _OUTCOMES.get(d.state, Outcome.QUEUED)
            later = d.next_attempt_at if outcome is Outcome.QUEUED else None
            receipt = attrs.evolve(
                receipt, outcome=outcome, attempts=d.attempts, error=d.last_error,
                next_attempt_at=later,
            )  # fmt: skip
        elif e.outcome is not Outcome.DEDUPLICATED:
            receipt = attrs.evolve(receipt, outcome=Outcome.FAILED, error="purged")
        out.append(receipt)
    return out
