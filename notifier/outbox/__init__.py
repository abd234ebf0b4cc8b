"""Durable delivery: an embedded outbox on SQLite.

Every delivery (one alert on one channel) is written before it is attempted and moves
through ``pending -> inflight -> delivered``, or back to ``pending`` with a later next
attempt after a retryable failure, or to ``dead`` (a dead letter the operator can retry
or purge). Each alert's deliveries go in the order written, different alerts side by
side; a channel is delivered by one worker at a time, paced by its rate limit across
every process sharing the file, guarded by a circuit breaker, with repeats inside the
dedup window dropped, and only by processes that have the channel with the same
identity. See ``docs/outbox.md`` and ``docs/architecture.md``.

Modules: :mod:`~.database` (the connection), :mod:`~.schema`, :mod:`~.store` (write and
claim), :mod:`~.attempts` (record attempts), :mod:`~.admin` (operator views),
:mod:`~.gates`, :mod:`~.owners`, :mod:`~.policy` (backoff, breaker, dedup), :mod:`~.settings`,
:mod:`~.identity` (which channel a delivery is for), :mod:`~.digest` (many in one message),
:mod:`~.runner` (where lanes run), :mod:`~.lane`, :mod:`~.engine` and :mod:`~.attach`
(the dispatcher's side).
"""

from __future__ import annotations

from notifier.outbox.engine import OutboxDelivery
from notifier.outbox.policy import Backoff, CircuitBreaker, is_duplicate
from notifier.outbox.records import (
    Claim,
    Delivery,
    DeliveryState,
    DrainReport,
    Enqueued,
    NewDelivery,
    Round,
)
from notifier.outbox.runner import InlineRunner, Runner, ThreadPoolRunner, owner_alive, worker_id
from notifier.outbox.settings import MEMORY, OutboxSettings, default_path
from notifier.outbox.store import OutboxStore

__all__ = [
    "MEMORY",
    "Backoff",
    "CircuitBreaker",
    "Claim",
    "Delivery",
    "DeliveryState",
    "DrainReport",
    "Enqueued",
    "InlineRunner",
    "NewDelivery",
    "OutboxDelivery",
    "OutboxSettings",
    "OutboxStore",
    "Round",
    "Runner",
    "ThreadPoolRunner",
    "default_path",
    "is_duplicate",
    "owner_alive",
    "worker_id",
]
