"""Durable delivery: an embedded outbox on SQLite.

Every delivery (one alert on one channel) is written before it is attempted and moves
through ``pending -> inflight -> delivered``, or back to ``pending`` with a later next
attempt after a retryable failure, or to ``dead`` (a dead letter the operator can retry
or purge). Each alert's deliveries go in the order written, different alerts side by
side; a channel is delivered by one worker at a time, paced by its rate limit across
every process sharing the file, guarded by a circuit breaker, with repeats inside the
dedup window dropped, and only by processes that have the channel with the same
identity. See ``docs/outbox.md`` and ``docs/architecture.md``.

Modules, in the order a delivery meets them:

- :mod:`~.settings`: the ``[outbox]`` table and where the file lives;
- :mod:`~.file`: the file itself (creating, opening, recognising it, what its errors
  mean), :mod:`~.schema`: its tables and their migrations, :mod:`~.database`: the
  connection's transactions, :mod:`~.deferred`: the records that ride along with the
  next one (group commit), and :mod:`~.checkpoints`: the log copied into the file by a
  connection of its own;
- :mod:`~.records`: the rows as values, read by column name, and :class:`DeliveryState`,
  the one list of states;
- :mod:`~.writing`: writing deliveries (coalescing, dedup, the one-delivery fast path);
- :mod:`~.claiming`: claiming a channel's due deliveries under its channel lease, and
  the lease's life (renewed, given back, taken back from stopped workers);
- :mod:`~.channels`: a channel's shared state: what stops a claim (lease, provider's
  block, circuit, send slots), when it can next be claimed, the send log as a pacer;
- :mod:`~.sending`: sending a claim through the :class:`~notifier.deliverer.Deliverer`,
  each alert in order, or as one digest;
- :mod:`~.attempts`: recording each attempt (delivered, retry, dead);
- :mod:`~.policy`: the pure rules (backoff, circuit breaker, dedup window, digests);
- :mod:`~.store`: :class:`OutboxStore`, the file's operations in one place, and the
  operators' and monitors' views;
- :mod:`~.engine`: :class:`OutboxDelivery`, joining store, rules and a runner, and
  :mod:`~.runner`: where claims are sent, by which worker, and the loops that keep
  delivering (drain, worker, leases kept, housekeeping).

Words: a *claim* is the due deliveries of one channel that one worker took, held under
the channel's *channel lease*; the dispatcher's *lanes* (:mod:`notifier.lanes`) are
something else, the threads a channel's sends run on.
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
