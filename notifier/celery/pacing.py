"""Rate limits shared by every worker: "never more than N in any W seconds" per channel.

:class:`RedisWindow` is :class:`notifier.ratelimit.SlidingWindow` kept in Redis: the start
time of each send in a sorted set, the oldest leaving the window before the next may
start, with a margin over W. One Lua script drops the old starts, checks and takes a
slot, so two workers can never take the last slot both. Times are the Redis server's own
(``TIME``), so machines whose clocks disagree still count one window.

The margin is the in-process limiter's (5 % of W, at most a second), but never less than
:data:`MIN_MARGIN`: requests from many threads in several processes, on loaded machines,
reach the provider with more spread than one process's do, and a burst that left at the
window's start must not still be arriving when the next window's burst does.

It has the dispatcher's pacer interface: :meth:`acquire`, :meth:`delay`,
:meth:`block_for`.
"""

from __future__ import annotations

import uuid

import redis

from notifier.celery import scripts
from notifier.celery.state import reaching
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import RateLimited
from notifier.kinds import RateLimit
from notifier.ratelimit import window

#: The least margin kept over a shared window, in seconds.
MIN_MARGIN = 0.25


class RedisWindow:
    """Paces every process sharing ``key`` in one Redis to ``limit``."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        limit: RateLimit,
        clock: Clock = SYSTEM_CLOCK,
        *,
        url: str = "",
    ) -> None:
        self.limit = limit
        self._window = max(window(limit), limit.per + MIN_MARGIN)
        self._keys = [key, f"{key}:blocked"]
        self._script = client.register_script(scripts.WINDOW)
        self._clock = clock
        self._url = url

    def __repr__(self) -> str:
        return f"RedisWindow({self.limit.count}/{self.limit.per:g}s)"

    def _call(self, member: str, block: float = 0.0) -> float:
        args: list[str | int] = [repr(self._window), self.limit.count, member, repr(block)]
        with reaching(self._url):
            return float(self._script(keys=self._keys, args=args))

    def delay(self) -> float:
        """Seconds the next caller would wait now (0 when it may go)."""
        return self._call("")

    def acquire(self, max_wait: float | None = None) -> float:
        """Wait for a free slot and take it; the seconds waited.

        :raises RateLimited: when the wait would exceed ``max_wait``; no slot is taken.
        """
        waited = 0.0
        member = uuid.uuid4().hex
        while (wait := self._call(member)) > 0:
            if max_wait is not None and waited + wait > max_wait:
                raise RateLimited(
                    f"rate limit {self.limit.count}/{self.limit.per:g}s: next slot in {wait:.1f}s",
                    retry_after=wait,
                    attempts=0,
                )
            self._clock.sleep(wait)
            waited += wait
        return waited

    def block_for(self, seconds: float) -> None:
        """The provider refused us: no process sends for ``seconds``."""
        self._call("", block=max(seconds, 0.001))
