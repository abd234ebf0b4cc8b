"""Sending one alert as several provider messages, and resuming it without repeats.

An alert split into parts is several provider calls. When part 2 of 3 fails (the
provider busy, its minute window full, the delivery's time used up), part 1 is already in
the chat; a retry that sent it again would show it twice. :func:`send_parts` sends the
parts in order and keeps a :class:`PartLedger` of how many went out, per delivery (its
idempotency key) and content, so a retry of the same delivery starts at the part that
failed.

The ledger is in memory, one per channel: a retry in the same process resumes (the
dispatcher's own retries, the outbox's retries by ``notifier worker`` or
``Dispatcher.outbox``); a retry after a restart, or by another process, starts again at
part 1.

Between parts :func:`send_parts` takes care of the rest of a multi-part delivery:

* pacing: each call after this attempt's first waits for its own slot of the channel's
  rate limit (:attr:`~notifier.models.DeliveryContext.pace`; the dispatcher paced the
  first), and a slot past the delivery's deadline stops the delivery there, retryable;
* the deadline (:mod:`notifier.deadline`): no part starts once the delivery's
  ``delivery_timeout`` has run out, so a delivery the dispatcher has stopped waiting for
  sends nothing more while its retry may already be running.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import attrs
import cachetools

from notifier import deadline
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import DeliveryTimeout, NotifierError
from notifier.kinds import ChannelSpec, Option
from notifier.models import Alert, DeliveryContext, SendResult

if TYPE_CHECKING:
    from notifier.http import CallResult, HttpClient

__all__ = ["SPLIT_OPTIONS", "PartLedger", "PartsSent", "SplitChannel", "send_parts"]

# The options of a kind that may send one alert as several messages.
SPLIT_OPTIONS: tuple[Option, ...] = (
    Option(
        "overflow",
        default="truncate",
        choices=("truncate", "split"),
        help="too long an alert is truncated, or split into numbered messages",
    ),
    Option("max_parts", int, default=3, minimum=1, help="messages one alert may split into"),
)


class _Attempted(Protocol):
    @property
    def attempts(self) -> int: ...


Body = TypeVar("Body")
Result = TypeVar("Result", bound=_Attempted)


class PartLedger:
    """How many leading parts of a delivery were sent; a cachetools TTL cache and a lock.

    :param maxsize: deliveries remembered at once (the oldest are forgotten first).
    :param ttl: seconds a record is kept; the outbox's ``max_age`` (a day by default)
        bounds how long a delivery is retried.
    :param clock: expires records, so tests move a fake clock instead of waiting.
    """

    def __init__(
        self, *, maxsize: int = 4096, ttl: float = 86_400.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._cache: cachetools.TTLCache[str, int] = cachetools.TTLCache(
            maxsize, ttl, timer=clock.monotonic
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(idempotency_key: str, bodies: Sequence[Any]) -> str | None:
        """The record's key: the delivery and exactly these parts. ``None`` (nothing is
        recorded) without an idempotency key or for a single part."""
        if not idempotency_key or len(bodies) < 2:
            return None
        # The content is part of the key: were the alert rendered differently on a retry
        # (another template, another limit), its parts would not line up with the record.
        canonical = json.dumps(list(bodies), sort_keys=True, ensure_ascii=False, default=str)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]
        return f"{idempotency_key}:{digest}"

    def sent(self, key: str | None) -> int:
        """How many leading parts are recorded as sent (0 when nothing is recorded)."""
        if key is None:
            return 0
        with self._lock:
            return self._cache.get(key, 0)

    def record(self, key: str | None, count: int) -> None:
        """Record ``count`` leading parts as sent; 0 forgets the delivery."""
        if key is None:
            return
        with self._lock:
            if count:
                self._cache[key] = count
            else:
                self._cache.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


@attrs.frozen
class PartsSent(Generic[Result]):
    """What this attempt sent: the results of its calls (parts an earlier attempt sent
    are skipped and have none), out of ``total`` parts."""

    results: tuple[Result, ...]
    total: int
    skipped: int

    @property
    def attempts(self) -> int:
        """Requests this attempt made, retries within each call included."""
        return sum(r.attempts for r in self.results)

    def send_result(
        self, message_id: str | None = None, details: Mapping[str, Any] | None = None
    ) -> SendResult:
        """The :class:`~notifier.models.SendResult` for this delivery; a resumed one says
        where it resumed in ``details.resumed_at_part``."""
        out = dict(details or {})
        if self.skipped:
            out["resumed_at_part"] = self.skipped + 1
        return SendResult(
            message_id=message_id, attempts=self.attempts, parts=self.total, details=out
        )


def send_parts(
    bodies: Sequence[Body],
    call: Callable[[Body], Result],
    *,
    ledger: PartLedger,
    delivery: DeliveryContext,
) -> PartsSent[Result]:
    """Send ``bodies`` in order with ``call`` (one provider message each), skipping the
    parts an earlier attempt of the same delivery sent.

    Before each call after this attempt's first it calls ``delivery.pace()`` and checks
    the delivery's deadline. Without an idempotency key every attempt starts at part 1.

    :raises NotifierError: the failed part's error, its message saying which part failed
        and how many went out, its ``attempts`` counting every request of this attempt. A
        deadline that ran out between parts is a retryable
        :class:`~notifier.errors.DeliveryTimeout`.
    """
    total = len(bodies)
    key = ledger.key(delivery.idempotency_key, bodies)
    # The last part is always sent: a record never covers a whole delivery (it is
    # forgotten once all parts went out), so a deliberate re-send is never swallowed.
    skipped = min(ledger.sent(key), total - 1) if total else 0
    results: list[Result] = []
    for index in range(skipped, total):
        try:
            if index > skipped:
                if delivery.pace is not None:
                    delivery.pace()
                left = deadline.remaining()
                if left is not None and left <= 0:
                    raise DeliveryTimeout("the delivery_timeout ran out between parts", attempts=0)
            results.append(call(bodies[index]))
        except NotifierError as exc:
            note = _progress(index, total, resumable=key is not None) if total > 1 else ""
            attempts = exc.attempts + sum(r.attempts for r in results)
            raise exc.with_context(suffix=note, attempts=attempts) from exc
        if index + 1 < total:
            # Recorded part by part, not only on a failure: an exception that is no
            # NotifierError (a plugin bug) leaves the record right too.
            ledger.record(key, index + 1)
    ledger.record(key, 0)
    return PartsSent(tuple(results), total, skipped)


def _progress(index: int, total: int, *, resumable: bool) -> str:
    note = f"part {index + 1}/{total} failed, {index} sent before it"
    if resumable and index:
        note += f"; a retry starts at part {index + 1}"
    return f" [{note}]"


class SplitChannel:
    """A channel that sends an alert as the provider messages :meth:`plan` returns, one
    :meth:`post` each, through :func:`send_parts`: every part after the first takes its
    own slot of the channel's rate limit, and a retried delivery resumes at the part that
    failed. A kind with :data:`SPLIT_OPTIONS` and a ``msgtype`` option subclasses it,
    setting ``kind`` and writing :meth:`plan` and :meth:`post`.
    """

    kind: str

    def __init__(self, spec: ChannelSpec, client: HttpClient, ledger: PartLedger) -> None:
        self.name = spec.name
        self.client = client
        self.ledger = ledger
        self.msgtype = spec.options["msgtype"]
        self.overflow = spec.options["overflow"]
        self.max_parts = spec.options["max_parts"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        """The request bodies a send delivers, in order (``notifier render`` shows them)."""
        raise NotImplementedError

    def post(self, message: dict[str, Any]) -> CallResult:
        """Send one of the bodies :meth:`plan` returned."""
        raise NotImplementedError

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        messages = self.plan(alert, delivery)
        sent = send_parts(messages, self.post, ledger=self.ledger, delivery=delivery)
        return sent.send_result()

    def close(self) -> None:
        self.client.close()
