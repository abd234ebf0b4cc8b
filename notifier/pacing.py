"""Pacing: one interface for keeping a channel within its provider's rate limit.

A :class:`Pacer` hands out send slots. Each send to a rate-limited channel takes exactly
one slot, from whichever backend is in force: :class:`~notifier.ratelimit.SlidingWindow`
in memory when the dispatcher delivers directly, the outbox's send log (shared by every
process on the file, :class:`notifier.outbox.channels.SendLogPacer`) when the outbox
delivers. Another backend (one shared through a server) plugs in per channel through
``Dispatcher(pacers=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from notifier import deadline

if TYPE_CHECKING:
    from notifier.kinds import RateLimit


@runtime_checkable
class Pacer(Protocol):
    """Send slots of one channel: at most ``limit.count`` sends per ``limit.per`` s."""

    @property
    def limit(self) -> RateLimit: ...

    def acquire(self, max_wait: float | None = None) -> float:
        """Wait for a free slot and take it; return the seconds waited.

        :raises RateLimited: (retryable, with ``retry_after``) when the wait would
            exceed ``max_wait``; no slot is taken then.
        """
        ...

    def delay(self) -> float:
        """Seconds the next caller would wait now (0 when it may go)."""
        ...

    def block_for(self, seconds: float) -> None:
        """The provider refused for its rate limit: hand out no slot for ``seconds``."""
        ...


def pace_within_deadline(pacer: Pacer) -> Callable[[], float]:
    """A :attr:`DeliveryContext.pace` for ``pacer`` that will not wait past the
    delivery's deadline: a further part that would is retried later instead."""

    def pace() -> float:
        return pacer.acquire(max_wait=deadline.remaining())

    return pace
