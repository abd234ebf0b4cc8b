"""A small thread-safe cache with a time-to-live per item, on an injectable clock.

cachetools caches are not thread-safe, so every access goes through one lock. The timer
is the clock's ``monotonic``, so tests expire entries by advancing a
:class:`~notifier.clock.FakeClock` instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

import cachetools

from notifier.clock import SYSTEM_CLOCK, Clock

#: what :meth:`ExpiringCache.get` and :meth:`~ExpiringCache.pop` return for no value; typed
#: ``Any`` so that it stands in for a value of any type
MISSING: Any = object()

V = TypeVar("V")


class ExpiringCache(Generic[V]):
    """Values that disappear ``ttl`` seconds after they were put, each with its own ttl.

    :param maxsize: entries kept at most; the least recently used goes first.
    """

    def __init__(self, maxsize: int = 256, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lock = threading.Lock()
        # Each value is stored as (value, ttl); the ttu function turns the ttl into the
        # expiry time when it is inserted, so items never share one global lifetime.
        self._cache: cachetools.TLRUCache[Hashable, tuple[V, float]] = cachetools.TLRUCache(
            maxsize=maxsize, ttu=_expires_at, timer=clock.monotonic
        )

    def get(self, key: Hashable, default: V = MISSING) -> V:
        with self._lock:
            item = self._cache.get(key)
        return default if item is None else item[0]

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._cache[key] = (value, ttl)

    def pop(self, key: Hashable) -> V:
        with self._lock:
            item = self._cache.pop(key, None)
        return MISSING if item is None else item[0]

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            self._cache.expire()
            return len(self._cache)


def _expires_at(_key: Hashable, value: tuple[object, float], now: float) -> float:
    return now + value[1]
