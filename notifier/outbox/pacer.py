"""The durable pacing backend: send slots from the outbox file's send log.

Every process sharing the file takes its slots from the same ``sends`` table, so a
channel's rate limit holds across all of them. A claim takes its first send's slot in
the claiming transaction (:meth:`OutboxStore.start_attempt`); this pacer hands out the
slots of further parts of a split message, and of direct sends while the outbox is on.
"""

from __future__ import annotations

from notifier.clock import Clock
from notifier.errors import RateLimited
from notifier.kinds import RateLimit
from notifier.outbox.store import OutboxStore


class SendLogPacer:
    """A :class:`notifier.pacing.Pacer` over the outbox's shared send log."""

    def __init__(self, store: OutboxStore, channel: str, limit: RateLimit, clock: Clock) -> None:
        self.store = store
        self.channel = channel
        self.limit = limit
        self.clock = clock

    def acquire(self, max_wait: float | None = None) -> float:
        waited = 0.0
        while (wait := self.store.take_slot(self.channel, self.clock.time(), self.limit)) > 0:
            if max_wait is not None and waited + wait > max_wait:
                raise RateLimited(
                    f"channel {self.channel!r} rate limit: next slot in {wait:.1f}s, "
                    "after the delivery_timeout",
                    retry_after=wait,
                    attempts=0,
                )
            self.clock.sleep(wait)
            waited += wait
        return waited

    def delay(self) -> float:
        return self.store.slot_delay(self.channel, self.clock.time(), self.limit)

    def block_for(self, seconds: float) -> None:
        self.store.block(self.channel, self.clock.time() + max(seconds, 0.0))
