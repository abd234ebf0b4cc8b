"""In-process pacing: at most N deliveries in any window of W seconds.

Providers count a sliding window ("20 messages a minute" means 20 in *any* 60 seconds),
so a token bucket refilled over W would let 2N through in the first window and have
the excess refused. :class:`SlidingWindow` remembers the start time of the last N sends
and makes the next caller wait until the oldest leaves the window. Waiting uses the
injected clock, so tests with a :class:`~notifier.clock.FakeClock` pace instantly.

The window is stretched by a small margin (5 %, at most one second): the limiter sees
when a request leaves, the provider counts when it arrives, and network jitter at the
window's edge would otherwise get the N+1st request refused.

The durable outbox enforces the same rule across processes; this limiter keeps one
process honest when it delivers without the outbox.
"""

from __future__ import annotations

import collections
import threading

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import RateLimited
from notifier.kinds import RateLimit


def window(limit: RateLimit) -> float:
    """The window actually kept for ``limit``: ``per`` plus the jitter margin."""
    return limit.per + min(1.0, 0.05 * limit.per)


class SlidingWindow:
    """Paces callers to ``limit.count`` per ``limit.per`` seconds, FIFO, thread-safe."""

    def __init__(
        self, limit: RateLimit, clock: Clock = SYSTEM_CLOCK, margin: float | None = None
    ) -> None:
        self.limit = limit
        self._window = window(limit) if margin is None else limit.per + margin
        self._clock = clock
        self._starts: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        # Held while a caller waits, so callers leave in arrival order.
        self._turn = threading.Lock()
        self._lock = threading.Lock()

    def delay(self) -> float:
        """Seconds the next caller would wait now (0 when it may go)."""
        with self._lock:
            return self._delay(self._clock.monotonic())

    def _delay(self, now: float) -> float:
        while self._starts and self._starts[0] <= now - self._window:
            self._starts.popleft()
        wait = self._blocked_until - now
        if len(self._starts) >= self.limit.count:
            wait = max(wait, self._starts[0] + self._window - now)
        return max(wait, 0.0)

    def acquire(self, max_wait: float | None = None) -> float:
        """Wait for a free slot and take it; return the seconds waited.

        :raises RateLimited: when the wait would exceed ``max_wait``; no slot is taken.
        """
        waited = 0.0
        with self._turn:
            while True:
                with self._lock:
                    now = self._clock.monotonic()
                    wait = self._delay(now)
                    if wait <= 0:
                        self._starts.append(now)
                        return waited
                if max_wait is not None and waited + wait > max_wait:
                    raise RateLimited(
                        f"rate limit {self.limit.count}/{self.limit.per:g}s: "
                        f"next slot in {wait:.1f}s",
                        retry_after=wait,
                        attempts=0,
                    )
                self._clock.sleep(wait)
                waited += wait

    def block_for(self, seconds: float) -> None:
        """The provider refused us: send nothing for ``seconds``."""
        with self._lock:
            until = self._clock.monotonic() + max(seconds, 0.0)
            self._blocked_until = max(self._blocked_until, until)
