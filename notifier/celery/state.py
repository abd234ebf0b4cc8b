"""What every worker on every machine shares, kept in Redis.

Each change is one Lua script (:mod:`notifier.celery.scripts`), so two workers never see
half of another's change. Keys start with ``notifier:<queue>:``; the ones about one alert
on one channel carry a hash of the two instead of their text, so no name can collide with
another's keys.

* per-alert order: a sorted set of the alert's unfinished deliveries on the channel, by
  sequence number; only the first may run, and only under a claim (a key with a lease);
* dedup and resolve-once: when the alert was last sent firing and resolved on the
  channel, read by :func:`notifier.outbox.policy.is_duplicate`;
* circuit breakers, rate-limit windows (:mod:`notifier.celery.pacing`), tokens
  (:mod:`notifier.celery.tokens`), counts per channel, and dead letters
  (:mod:`notifier.celery.deadletters`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
import redis
import redis.exceptions

from notifier.celery import scripts
from notifier.celery.settings import CelerySettings, redacted_url
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import QueueUnavailable

#: How long dedup records outlive their last send: resolve-once must hold for as long as
#: an alert may stay firing.
KEEP_SENT = 30 * 86_400
#: How long a queued delivery counts as alive without a sign of its task, by default.
GRACE = 900.0


def connect(url: str, timeout: float) -> redis.Redis:
    """A client of the Redis at ``url`` that gives up on a dead server after ``timeout``
    seconds instead of hanging, and reconnects by itself once it answers again."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=max(timeout, 5.0),
        health_check_interval=30,
        decode_responses=True,
    )


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Redis's connection errors as :class:`QueueUnavailable`, naming the server."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise QueueUnavailable(
            f"the shared state at {redacted_url(url)} cannot be reached: {exc}"
        ) from exc


def alert_key(channel: str, fingerprint: str) -> str:
    raw = f"{channel}\x1f{fingerprint}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


@attrs.frozen
class Begun:
    """Whether a delivery may run: ``go`` (claimed), ``wait`` (``wait`` seconds: an
    earlier delivery of the alert, or another worker, has it) or ``done`` (finished
    before: a repeat). With ``go``, when the alert was last ``sent`` on the channel by
    status, and whether the channel's breaker has anything to say (``tripped``: open, or
    failures counted since the last success)."""

    step: str
    wait: float = 0.0
    sent: dict[str, float] = attrs.field(factory=dict)
    tripped: bool = False


class SharedState:
    """The shared state of one deployment (one ``[celery] queue``) in one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        url: str = "",
        grace: float = GRACE,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """:param grace: seconds a queued delivery counts as alive without a sign of its
        task; an earlier delivery of an alert not seen for that long no longer holds the
        later ones back."""
        # Any: the client decodes answers to str, which its type hints cannot say.
        self.client: Any = client
        self.prefix = f"notifier:{prefix}"
        self.url = url
        self.grace = grace
        self.clock = clock
        self._scripts = {
            name: client.register_script(getattr(scripts, name))
            for name in (
                "ENQUEUE",
                "UNQUEUE",
                "BEGIN",
                "RELEASE",
                "FINISH",
                "TO_RETRY",
                "ADMIT",
                "TRIPPED",
                "RETRY_DEAD",
                "KEEP",
                "REVIVE",
            )
        }

    @classmethod
    def open(
        cls, url: str, prefix: str, timeout: float = 5.0, *, grace: float = GRACE
    ) -> SharedState:
        return cls(connect(url, timeout), prefix, url=url, grace=grace)

    @classmethod
    def for_settings(cls, settings: CelerySettings) -> SharedState:
        return cls.open(
            settings.state, settings.queue, settings.connect_timeout, grace=settings.grace
        )

    def _alive(self, after: float = 0.0) -> str:
        return repr(self.clock.time() + after + self.grace)

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        with reaching(self.url):
            return self._scripts[name](keys=keys, args=args)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _alert(self, what: str, channel: str, fingerprint: str) -> str:
        return self.key(what, alert_key(channel, fingerprint))

    @staticmethod
    def job_id(channel: str, fingerprint: str, seq: int) -> str:
        return f"{alert_key(channel, fingerprint)}:{seq}"

    def ping(self) -> None:
        with reaching(self.url):
            self.client.ping()

    # -- a delivery's life ------------------------------------------------------------

    def enqueue(self, channel: str, fingerprint: str, keep: float) -> int:
        """Give a new delivery its place in its alert's order; its sequence number."""
        keys = [
            self.key("seq"),
            self._alert("order", channel, fingerprint),
            self.key("counts", channel),
            self.key("channels"),
            self._alert("marks", channel, fingerprint),
        ]
        return int(self._run("ENQUEUE", keys, [int(keep) + 1, channel, self._alive()]))

    def unqueue(self, channel: str, fingerprint: str, seq: int) -> None:
        """Forget a delivery the broker did not take (so later ones need not wait)."""
        keys = [
            self._alert("order", channel, fingerprint),
            self.key("counts", channel),
            self._alert("marks", channel, fingerprint),
            self.key("jobs"),
            self.key("watch"),
        ]
        self._run("UNQUEUE", keys, [seq, self.job_id(channel, fingerprint, seq)])

    def keep(self, channel: str, fingerprint: str, seq: int, job: Mapping[str, Any]) -> None:
        """Keep a queued delivery's job: a worker's sweep sends it again should the
        broker lose its task (:meth:`revive`)."""
        keys = [self.key("jobs"), self.key("watch"), self._alert("marks", channel, fingerprint)]
        args = [self.job_id(channel, fingerprint, seq), json.dumps(job), self._alive(), seq]
        self._run("KEEP", keys, args)

    def revive(self, limit: int = 100) -> list[dict[str, Any]]:
        """The jobs of queued deliveries whose task nobody has shown for ``grace``
        seconds, each handed to this caller alone for another ``grace``."""
        keys = [self.key("watch"), self.key("jobs")]
        found = self._run("REVIVE", keys, [repr(self.clock.time()), self._alive(), limit])
        return [json.loads(job) for job in found]

    def begin(self, channel: str, fingerprint: str, seq: int, token: str, lease: float) -> Begun:
        """Claim a delivery for ``lease`` seconds if it may run now (see :class:`Begun`)."""
        keys = [
            self._alert("order", channel, fingerprint),
            self._alert("claim", channel, fingerprint),
            self._alert("sent", channel, fingerprint),
            self.key("breaker", channel),
            self._alert("marks", channel, fingerprint),
            self.key("counts", channel),
            self.key("jobs"),
            self.key("watch"),
        ]
        now = repr(self.clock.time())
        args = [seq, token, int(lease * 1000), now, self._alive(), alert_key(channel, fingerprint)]
        answer = self._run("BEGIN", keys, args)
        if answer[0] != "go":
            return Begun(str(answer[0]), float(answer[1]))
        firing, resolved, circuit, failures = answer[2:6]
        sent = {s: float(at) for s, at in (("firing", firing), ("resolved", resolved)) if at}
        return Begun("go", 0.0, sent, circuit != "closed" or int(failures) > 0)

    def release(
        self, channel: str, fingerprint: str, token: str, seq: int, wait: float = 0.0
    ) -> None:
        """Give back the claim; the delivery's task runs again in ``wait`` seconds."""
        keys = [
            self._alert("claim", channel, fingerprint),
            self._alert("marks", channel, fingerprint),
        ]
        self._run("RELEASE", keys, [token, seq, self._alive(wait)])

    def finish(
        self,
        channel: str,
        fingerprint: str,
        seq: int,
        token: str,
        outcome: str,
        *,
        status: str = "",
        now: float = 0.0,
        record: Mapping[str, Any] | None = None,
        retrying: bool = False,
    ) -> int:
        """Record the end of a delivery: ``delivered``, ``deduplicated`` or ``dead``
        (then ``record`` is kept as the dead letter; its id is returned)."""
        keys = [
            self._alert("order", channel, fingerprint),
            self._alert("claim", channel, fingerprint),
            self._alert("sent", channel, fingerprint),
            self.key("counts", channel),
            self.key("dead"),
            self.key("dead", "index"),
            self.key("dead", "seq"),
            self._alert("marks", channel, fingerprint),
            self.key("jobs"),
            self.key("watch"),
        ]
        args = [
            seq,
            token,
            outcome,
            status,
            repr(now),
            json.dumps(record or {}),
            KEEP_SENT,
            "1" if retrying else "0",
            self.job_id(channel, fingerprint, seq),
        ]
        return int(self._run("FINISH", keys, args))

    def to_retry(
        self,
        channel: str,
        fingerprint: str,
        token: str,
        seq: int,
        delay: float,
        job: Mapping[str, Any],
        *,
        retrying: bool,
    ) -> None:
        """Count the delivery as waiting ``delay`` seconds for a retry, as ``job``."""
        keys = [
            self._alert("claim", channel, fingerprint),
            self.key("counts", channel),
            self._alert("marks", channel, fingerprint),
            self.key("jobs"),
            self.key("watch"),
        ]
        job_id = self.job_id(channel, fingerprint, seq)
        args = [token, "1" if retrying else "0", seq, self._alive(delay), job_id, json.dumps(job)]
        self._run("TO_RETRY", keys, args)

    # -- circuit breakers -------------------------------------------------------------

    def admit(self, channel: str, now: float, threshold: int, probe: float) -> float:
        """0 when a delivery of ``channel`` may be tried now, else seconds to wait."""
        keys = [self.key("breaker", channel)]
        return float(self._run("ADMIT", keys, [repr(now), threshold, repr(probe)]))

    def tripped(self, channel: str, now: float, threshold: int, cooldown: float) -> None:
        keys = [self.key("breaker", channel)]
        self._run("TRIPPED", keys, [repr(now), threshold, repr(cooldown)])

    def closed(self, channel: str) -> None:
        with reaching(self.url):
            self.client.delete(self.key("breaker", channel))

    def circuit(self, channel: str) -> dict[str, str]:
        with reaching(self.url):
            return dict(self.client.hgetall(self.key("breaker", channel)))

    # -- what is queued, and dead letters ---------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """``{channel: {"queued": n, "retry": n, "dead": n}}``."""
        with reaching(self.url):
            channels = sorted(self.client.smembers(self.key("channels")))
            pipe = self.client.pipeline(transaction=False)
            for channel in channels:
                pipe.hgetall(self.key("counts", channel))
            found = pipe.execute()
        return {
            channel: {s: max(int(raw.get(s, 0)), 0) for s in ("queued", "retry", "dead")}
            for channel, raw in zip(channels, found, strict=True)
        }

    def requeue_dead(self, dead_id: int, channel: str, fingerprint: str, keep: float) -> int:
        """Take dead letter ``dead_id`` out of the dead letters and give it a new place in
        its alert's order; its new sequence number, or 0 when there is no such letter."""
        keys = [
            self.key("dead"),
            self.key("dead", "index"),
            self.key("counts", channel),
            self.key("seq"),
            self._alert("order", channel, fingerprint),
            self._alert("marks", channel, fingerprint),
        ]
        return int(self._run("RETRY_DEAD", keys, [dead_id, int(keep) + 1, self._alive()]))

    def close(self) -> None:
        self.client.close()
