"""Sending a message that was split into parts, and resuming it without repeats.

A split alert is several provider calls. When part 3 of 4 fails (WeCom busy, a robot's
minute window full), parts 1 and 2 are already in the chat; a retry of the delivery that
sent them again would show them twice. :class:`PartLedger` remembers, per idempotency key
and content, how many parts went out, so the retry starts at the part that failed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import cachetools

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import NotifierError
from notifier.http import CallResult


class PartLedger:
    """How many leading parts of a delivery were sent; a cachetools TTL cache and a lock.

    :param ttl: seconds a record is kept; longer than the outbox's retry horizon.
    """

    def __init__(self, *, maxsize: int = 4096, ttl: float = 86400.0, clock: Clock = SYSTEM_CLOCK):
        self._cache: cachetools.TTLCache[str, int] = cachetools.TTLCache(
            maxsize, ttl, timer=clock.monotonic
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(idempotency_key: str, bodies: Sequence[Any]) -> str | None:
        """The record's key: the delivery and exactly these parts (``None``: no key)."""
        if not idempotency_key or len(bodies) < 2:
            return None
        canonical = json.dumps(list(bodies), sort_keys=True, ensure_ascii=False, default=str)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]
        return f"{idempotency_key}:{digest}"

    def sent(self, key: str | None) -> int:
        if key is None:
            return 0
        with self._lock:
            return self._cache.get(key, 0)

    def record(self, key: str | None, count: int) -> None:
        if key is None:
            return
        with self._lock:
            if count:
                self._cache[key] = count
            else:
                self._cache.pop(key, None)


@attrs.frozen
class PartsSent:
    """The calls that delivered the parts this attempt sent (earlier ones are skipped)."""

    results: tuple[CallResult, ...]
    total: int
    skipped: int

    @property
    def attempts(self) -> int:
        return sum(r.attempts for r in self.results)


def send_parts(
    bodies: Sequence[dict[str, Any]],
    call: Callable[[dict[str, Any]], CallResult],
    *,
    ledger: PartLedger,
    idempotency_key: str,
) -> PartsSent:
    """Send ``bodies`` in order with ``call``, skipping parts an earlier attempt of the same
    delivery sent.

    :raises NotifierError: the failed part's error, its message saying which part failed
        and how many went out, its ``attempts`` counting every request of this attempt.
    """
    key = ledger.key(idempotency_key, bodies)
    skipped = min(ledger.sent(key), len(bodies) - 1)
    results: list[CallResult] = []
    for index in range(skipped, len(bodies)):
        try:
            results.append(call(bodies[index]))
        except NotifierError as exc:
            ledger.record(key, index)
            exc.attempts += sum(r.attempts for r in results)
            if len(bodies) > 1:
                note = f"part {index + 1}/{len(bodies)} failed, {index} sent before it"
                if key is not None and index:
                    note += f"; a retry starts at part {index + 1}"
                exc.message = f"{exc.message} [{note}]"
                exc.args = (exc.message,)
            raise
    ledger.record(key, 0)
    return PartsSent(tuple(results), len(bodies), skipped)
