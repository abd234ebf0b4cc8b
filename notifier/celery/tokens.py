"""Provider tokens shared by every worker: one ``gettoken`` for all of them.

:class:`RedisTokenStore` is the :class:`notifier.http.auth.TokenStore` of ``[celery]``.
The token is kept under a key that expires when the token stops being usable. When there
is none, one Lua script hands the fetch lock (``SET NX`` with a lease) to exactly one
caller across all processes; the others poll for the token it stores, for as long as the
delivery's deadline allows. A leader that dies or fails lets its lock expire or gives it
back, and the next caller fetches.

The token is a credential: the key holds it in clear, as the provider's answer did, so
the Redis must be one only the deployment's workers can reach (AUTH, a private network).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis

from notifier import deadline
from notifier.celery import scripts
from notifier.celery.state import reaching
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import DeliveryTimeout

# How long one fetch may hold the lock before another caller may try.
LOCK = 15.0
# How often waiters look for the leader's token.
POLL = 0.02


class RedisTokenStore:
    """Tokens of every credential, shared through one Redis under ``prefix``."""

    def __init__(
        self, client: redis.Redis, prefix: str, *, clock: Clock = SYSTEM_CLOCK, url: str = ""
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._url = url
        self._take = client.register_script(scripts.GRANT)
        self._store = client.register_script(scripts.HAND_OVER)
        self._drop = client.register_script(scripts.DROP_IF)
        self.fetches = 0  # fetches this process led, for tests and diagnostics

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self._prefix!r})"

    def _keys(self, identity: str) -> list[str]:
        return [f"{self._prefix}:token:{identity}", f"{self._prefix}:token-lock:{identity}"]

    def get(self, identity: str, fetch: Callable[[], tuple[str, float]]) -> tuple[str, float]:
        keys = self._keys(identity)
        me = uuid.uuid4().hex
        waited = 0.0
        while True:
            with reaching(self._url):
                step, token, ms = self._take(keys=keys, args=[me, int(LOCK * 1000)])
            if step == "token":
                return str(token), max(int(ms), 0) / 1000
            if step == "lead":
                return self._lead(keys, me, fetch)
            left = deadline.remaining()
            if left is not None and waited + POLL > left:
                raise DeliveryTimeout(
                    "delivery_timeout reached while another worker fetched the access token",
                    attempts=0,
                )
            self._clock.sleep(POLL)
            waited += POLL

    def _lead(
        self, keys: list[str], me: str, fetch: Callable[[], tuple[str, float]]
    ) -> tuple[str, float]:
        try:
            self.fetches += 1
            token, ttl = fetch()
        except BaseException:
            with reaching(self._url):
                self._drop(keys=[keys[1]], args=[me])
            raise
        with reaching(self._url):
            self._store(keys=keys, args=[token, max(int(ttl * 1000), 1), me])
        return token, ttl

    def invalidate(self, identity: str, token: str) -> bool:
        with reaching(self._url):
            return bool(self._drop(keys=self._keys(identity)[:1], args=[token]))
