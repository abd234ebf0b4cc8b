"""The worker side: what one task does with its delivery.

In order: wait for its turn in the alert's order (and take the alert's claim), drop it
as a duplicate (the outbox's dedup and resolve-once rules), wait out an open circuit,
take a slot of the channel's shared rate limit, attempt it once, and record the outcome:
delivered, a retry after the outbox's backoff (a new task with a ``countdown``), or a
dead letter. Whatever must wait goes back to the queue as a new task with a countdown
instead of holding a worker.

The attempt itself goes through the dispatcher's :class:`~notifier.deliverer.Deliverer`,
paced by the shared windows (:meth:`~notifier.deliverer.Deliverer.pace_with`), so every
part of a split message takes a slot all workers count.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from notifier.attempt import Attempt
from notifier.celery.jobs import CeleryDelivery, Job, publish
from notifier.celery.pacing import RedisWindow
from notifier.celery.state import Begun
from notifier.errors import QueueUnavailable, RateLimited
from notifier.groups import AlertGroup
from notifier.identity import channel_identity
from notifier.models import Alert, DeliveryContext
from notifier.outbox.policy import is_duplicate

if TYPE_CHECKING:
    from celery import Celery

    from notifier.dispatcher import Dispatcher

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# The longest a task waits in a worker for a rate-limit slot before it goes back to the
# queue with a countdown instead.
RATE_WAIT = 2.0
# Extra seconds on an alert's claim beyond the channel's delivery_timeout.
CLAIM_MARGIN = 5.0
# How soon a delivery written for other channel settings is offered again.
ELSEWHERE = 5.0
# The longest between two sweeps for lost tasks.
SWEEP = 30.0
# How long a task waits, in hand, for Redis or the broker to answer again, trying every
# OUTAGE_PAUSE seconds, before it gives up and is given back.
OUTAGE_WAIT = 60.0
OUTAGE_PAUSE = 1.0


def attempt(dispatcher: Dispatcher, job: Job, alert: Alert) -> Attempt:
    """One attempt of ``job``, whose first send's slot the caller took already."""
    context = DeliveryContext(idempotency_key=job.key, attempt=job.attempt, mentions=job.mentions)
    group = None if job.group is None else AlertGroup.from_dict(job.group)
    return dispatcher.deliverer.attempt(job.channel, alert, context, paced=True, group=group)


class Runtime:
    """Delivers tasks through one dispatcher configured with ``[celery]``."""

    def __init__(self, dispatcher: Dispatcher, app: Celery) -> None:
        delivery = dispatcher.celery
        assert delivery is not None
        self.dispatcher = dispatcher
        self.delivery: CeleryDelivery = delivery
        self.settings = delivery.settings
        self.state = delivery.state
        self.clock = dispatcher.clock
        self.app = app
        self.rng = random.Random()
        self.identities = {n: channel_identity(c.spec) for n, c in dispatcher.channels.items()}
        self.windows = {
            name: RedisWindow(
                self.state.client,
                self.state.key("window", name),
                live.spec.rate_limit,
                self.clock,
                url=self.state.url,
            )
            for name, live in dispatcher.channels.items()
            if live.spec.rate_limit is not None
        }
        dispatcher.deliverer.pace_with(self.windows)

    def sweep(self) -> int:
        """Send again the queued deliveries whose task the broker lost (a Redis broker
        stopped between taking a task from the queue and recording it as unacknowledged
        loses it); how many. Their place and claim in Redis keep a copy that turns up
        after all from being delivered twice."""
        revived = self.state.revive()
        for payload in revived:
            job = Job.from_payload(payload)
            log.warning(
                "%s: sending %r again: no worker has seen its task for %gs",
                job.channel,
                _title(job),
                self.state.grace,
            )
            self._publish(job, max(job.due - self.clock.time(), 0.0))
        return len(revived)

    def sweep_forever(self, stop: threading.Event) -> None:
        every = min(max(self.settings.grace / 4, 1.0), SWEEP)
        while not stop.wait(every):
            try:
                self.sweep()
            except Exception as exc:  # Redis or the broker away: the next sweep tries again
                log.debug("sweep for lost tasks failed: %s", exc)

    def run(self, payload: dict[str, Any], token: str) -> str:
        """Handle one task; what became of it (for logs and tests).

        While Redis or the broker cannot be reached (:class:`QueueUnavailable`), the step
        that needs it is tried again every second, for up to :data:`OUTAGE_WAIT`
        seconds, with the task in hand and not acknowledged: what comes before the
        attempt is repeated whole (it sends nothing), what comes after it (recording
        the outcome) alone, so the provider never gets the delivery twice for it.
        """
        job = Job.from_payload(payload)
        ready = self._patiently(self._prepare, job, token)
        if isinstance(ready, str):
            return ready
        begun = ready
        try:
            tried = attempt(self.dispatcher, job, Alert.from_dict(job.alert))
        except BaseException:
            self.state.release(job.channel, job.fingerprint, token, job.seq)
            raise
        return self._patiently(self._outcome, job, token, tried, begun)

    def _patiently(self, step: Callable[..., _T], *args: Any) -> _T:
        waited = 0.0
        while True:
            try:
                return step(*args)
            except QueueUnavailable as exc:
                if waited >= OUTAGE_WAIT:
                    raise
                if not waited:
                    log.warning("%s; trying again every %gs", exc, OUTAGE_PAUSE)
                self.clock.sleep(OUTAGE_PAUSE)
                waited += OUTAGE_PAUSE

    def _prepare(self, job: Job, token: str) -> str | Begun:
        """Everything before the attempt: what became of the task when it ends here,
        else the claimed delivery's state (with a slot of its channel's window taken)."""
        now = self.clock.time()
        if job.due > now + 0.05:  # a countdown longer than the broker holds a task
            return self._later(job, job.due - now, "not due")
        live = self.dispatcher.channels.get(job.channel)
        lease = (live.spec.timeout if live else 30.0) + RATE_WAIT + CLAIM_MARGIN
        begun = self.state.begin(job.channel, job.fingerprint, job.seq, token, lease)
        if begun.step == "done":
            return "repeat"  # finished before: a redelivered task
        if begun.step == "wait":
            return self._later(job, begun.wait, "waiting for its turn")
        return self._claimed(job, token, now, begun)

    def _claimed(self, job: Job, token: str, now: float, begun: Begun) -> str | Begun:
        settings = self.settings
        live = self.dispatcher.channels.get(job.channel)
        if live is None:
            error = f"channel {job.channel!r} is not in the configuration any more"
            return self._dead(job, token, error, now)
        if self.identities.get(job.channel) != job.identity:
            if now - job.written_at >= settings.max_age:
                error = (
                    f"no worker has channel {job.channel!r} with the settings it was "
                    f"written for, within max_age ({settings.max_age:g}s)"
                )
                return self._dead(job, token, error, now)
            log.warning(
                "%s: written for other channel settings; left for a worker that has them",
                job.channel,
            )
            return self._release(job, token, ELSEWHERE, "other settings")
        window = settings.dedup_window
        if is_duplicate(job.status, begun.sent, now, window):
            self._finish(job, token, "deduplicated", now)
            return "deduplicated"
        if begun.tripped and settings.breaker_threshold:
            probe = live.spec.timeout + CLAIM_MARGIN
            closed_in = self.state.admit(job.channel, now, settings.breaker_threshold, probe)
            if closed_in > 0:
                return self._release(job, token, closed_in, "circuit open")
        pacer = self.windows.get(job.channel)
        if pacer is not None:
            try:
                pacer.acquire(max_wait=RATE_WAIT)
            except RateLimited as exc:
                return self._release(job, token, exc.retry_after or RATE_WAIT, "rate limit")
        return begun

    def _outcome(self, job: Job, token: str, tried: Attempt, begun: Begun) -> str:
        settings = self.settings
        now = self.clock.time()
        if tried.ok:
            self._finish(job, token, "delivered", now)
            if begun.tripped:
                self.state.closed(job.channel)
            log.info("%s: delivered %r (attempt %d)", job.channel, _title(job), job.attempt)
            return "delivered"
        retry_after = tried.retry_after
        if tried.rate_limited:
            # The provider's refusal paused the channel's shared window for every worker
            # (the lane blocks its pacer); it is neither an attempt nor a breaker failure.
            return self._release(job, token, retry_after or 1.0, "rate limited by the provider")
        error = tried.error or "failed"
        if tried.retryable:
            if settings.breaker_threshold:
                self.state.tripped(
                    job.channel, now, settings.breaker_threshold, settings.breaker_cooldown
                )
            if job.attempt >= settings.max_attempts:
                return self._dead(job, token, f"{error} (after {job.attempt} attempts)", now)
            if now - job.written_at >= settings.max_age:
                return self._dead(job, token, f"{error} (older than max_age)", now)
            delay = settings.backoff.delay(job.attempt, self.rng, retry_after)
            again = attrs.evolve(job, attempt=job.attempt + 1, retrying=True, due=now + delay)
            self.state.to_retry(
                job.channel,
                job.fingerprint,
                token,
                job.seq,
                delay,
                again.to_payload(),
                retrying=job.retrying,
            )
            self._publish(again, delay)
            log.warning(
                "%s: queued %r, next attempt in %.1fs: %s", job.channel, _title(job), delay, error
            )
            return "retry"
        return self._dead(job, token, error, now)

    def _finish(self, job: Job, token: str, outcome: str, now: float) -> None:
        self.state.finish(
            job.channel,
            job.fingerprint,
            job.seq,
            token,
            outcome,
            status=job.status,
            now=now,
            retrying=job.retrying,
        )

    def _dead(self, job: Job, token: str, error: str, now: float) -> str:
        record = {"payload": job.to_payload(), "error": error, "died_at": now}
        dead_id = self.state.finish(
            job.channel,
            job.fingerprint,
            job.seq,
            token,
            "dead",
            now=now,
            record=record,
            retrying=job.retrying,
        )
        log.warning(
            "%s: failed %r, kept as dead letter %d: %s", job.channel, _title(job), dead_id, error
        )
        return "dead"

    def _release(self, job: Job, token: str, seconds: float, why: str) -> str:
        """Give back the claim and run ``job`` again in ``seconds``."""
        self.state.release(job.channel, job.fingerprint, token, job.seq, seconds)
        return self._later(job, seconds, why)

    def _later(self, job: Job, seconds: float, why: str) -> str:
        """Send ``job`` back to the queue to run in ``seconds``, not counted as an attempt."""
        wait = max(seconds, 0.05)
        again = attrs.evolve(job, due=self.clock.time() + wait)
        self._publish(again, wait)
        log.debug("%s: %s, again in %.2fs", job.channel, why, wait)
        return "later"

    def _publish(self, job: Job, countdown: float) -> None:
        # A task the broker holds longer than the visibility timeout would be handed to a
        # second worker: longer waits are made of several shorter ones (``due``).
        hold = min(countdown, self.settings.visibility_timeout / 2)
        publish(self.app, self.settings, job, hold)


def _title(job: Job) -> str:
    return str(job.alert.get("title", ""))
