"""What engine calls report: rounds, drains, and receipts for every delivery written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from notifier.models import Outcome, Receipt
from notifier.outbox.records import Delivery, DeliveryState, Enqueued


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
