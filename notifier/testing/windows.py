"""Per-key sliding windows, the way providers count calls per token, robot or webhook."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

__all__ = ["RateWindows"]


class RateWindows:
    """How many calls each key made in its recent windows, and whether one more fits.

    A fake provider asks :meth:`admit` on every call it would accept; the limits are
    passed on each call, so a test may change a fake's rate attributes at any time::

        windows = RateWindows()
        windows.admit("robot-1", clock.monotonic(), [(20, 60.0)], penalty=600.0)
        windows.admit("bot-1", clock.monotonic(), [(5, 1.0), (100, 60.0)])

    Safe to use from many threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def admit(
        self,
        key: str,
        now: float,
        limits: Iterable[tuple[int, float]],
        *,
        penalty: float = 0.0,
    ) -> bool:
        """Count a call by ``key`` at ``now`` and say ``True``, unless it would make more
        than ``count`` calls within ``seconds`` for one of ``limits`` (then it is not
        counted). Going over blocks the key for ``penalty`` seconds more, when given."""
        limits = list(limits)
        with self._lock:
            if now < self._blocked_until.get(key, float("-inf")):
                return False
            times = self._times.setdefault(key, deque())
            longest = max((seconds for _, seconds in limits), default=0.0)
            while times and times[0] <= now - longest:
                times.popleft()
            for count, seconds in limits:
                if sum(1 for t in times if t > now - seconds) >= count:
                    if penalty > 0:
                        self._blocked_until[key] = now + penalty
                    return False
            times.append(now)
            return True

    def clear(self) -> None:
        """Forget every key's calls and blocks."""
        with self._lock:
            self._times.clear()
            self._blocked_until.clear()
