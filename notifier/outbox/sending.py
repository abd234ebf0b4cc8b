"""Sending a claim: send claimed deliveries in order and record how each went.

A claim stops at the first delivery that must wait (a retryable failure, a full rate
window, a provider's pause): the deliveries behind it go back to pending untouched, so
the channel's order holds. Whatever happens, the claim gives its lease back.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from notifier.attempt import Attempt
from notifier.clock import Clock
from notifier.deliverer import Deliverer
from notifier.groups import AlertGroup
from notifier.kinds import RateLimit
from notifier.models import Alert, DeliveryContext, Outcome, Receipt, delivery_key
from notifier.outbox.attempts import LEASE_LOST
from notifier.outbox.policy import build_digest, is_duplicate
from notifier.outbox.records import Claim, Delivery
from notifier.outbox.runner import ChannelPools
from notifier.outbox.settings import OutboxSettings
from notifier.outbox.store import OutboxStore
from notifier.redact import redact

log = logging.getLogger("notifier.outbox")
deliveries = logging.getLogger("notifier.deliveries")  # see notifier.lanes


@attrs.frozen
class SendContext:
    """Everything a claim needs; built once per engine."""

    store: OutboxStore
    deliverer: Deliverer
    settings: OutboxSettings
    rate_limits: Mapping[str, RateLimit]
    clock: Clock
    owner: str
    rng: random.Random
    stopping: Callable[[], bool]
    # {channel: deliveries of different alerts sent at once}: the channel's workers.
    concurrency: Mapping[str, int] = attrs.field(factory=dict)
    # The thread pool of a channel's claim, by channel and size.
    pool: ChannelPools = attrs.field(factory=lambda: ChannelPools({}))


def _names(delivery: Delivery) -> dict[str, Any]:
    """The details by which a receipt names the stored delivery it is about."""
    return {"delivery_id": delivery.id, "idempotency_key": delivery.key}


def _ours(delivery: Delivery, receipt: Receipt | None = None, **changes: Any) -> Receipt:
    """``receipt`` (or a fresh one) naming the stored delivery it is about."""
    details = dict(receipt.details) if receipt is not None else {}
    details.update(_names(delivery))
    details.update(changes.pop("extra", {}))
    if receipt is None:
        receipt = Receipt(delivery.channel, Outcome.QUEUED, fingerprint=delivery.fingerprint)
    return attrs.evolve(receipt, details=details, **changes)


def send_claim(ctx: SendContext, claim: Claim) -> dict[int, Receipt]:
    """Deliver ``claim``; a receipt for each delivery that was settled or tried.

    Deliveries of one alert (fingerprint) go in the order written; different alerts go
    side by side, up to the channel's ``workers`` at a time. A delivery that must retry
    holds back the rest of its own alert only; a full rate window, a provider's pause,
    a lost lease or an opening circuit stop the whole claim. What was not tried goes back
    to pending.
    """
    if claim.digest:
        return run_digest(ctx, claim)
    receipts: dict[int, Receipt] = {}
    sending = _Sending(ctx, claim, receipts)
    groups: dict[str, list[Delivery]] = {}
    for d in claim.deliveries:
        groups.setdefault(d.fingerprint, []).append(d)
    workers = min(ctx.concurrency.get(claim.channel, 1), len(groups))
    try:
        if workers <= 1:
            sending.run(list(claim.deliveries))  # in the order written
        else:
            sending.shared = True
            pool = ctx.pool(claim.channel, workers)
            futures = [pool.submit(sending.run, group) for group in groups.values()]
            for future in futures:
                future.result()
    finally:
        if not sending.released:
            ids = [d.id for d in claim.deliveries]
            ctx.store.end_lane(claim.channel, ctx.owner, ctx.clock.time(), ids)
    return receipts


class _Sending:
    """One claim being delivered, alert by alert; shared by the threads running it."""

    def __init__(self, ctx: SendContext, claim: Claim, receipts: dict[int, Receipt]) -> None:
        self.ctx, self.claim, self.receipts = ctx, claim, receipts
        self.shared = False  # groups run on several threads: the claim is given back last
        self.stopped = False  # every group stops: rate window, pause, lease, circuit
        self.released = False  # the claim's last write gave the lease back with it
        self.failures = 0  # retryable failures in a row, to stop before the breaker
        self.held: set[str] = set()  # alerts whose later deliveries wait for a retry
        self.lock = threading.Lock()

    def _last(self, d: Delivery) -> bool:
        """Whether ``d`` is the claim's last delivery, nothing of it left in flight: its
        record gives the channel lease back in the same transaction."""
        return not self.shared and not self.held and d is self.claim.deliveries[-1]

    def run(self, deliveries: list[Delivery]) -> None:
        """Deliver in order, each alert's deliveries in the order written."""
        ctx, claim = self.ctx, self.claim
        store, settings, owner = ctx.store, ctx.settings, ctx.owner
        for i, d in enumerate(deliveries):
            if self.stopped or ctx.stopping():
                return
            if d.fingerprint in self.held:
                continue
            last = self._last(d)
            now = ctx.clock.time()
            if now - d.enqueued_at >= settings.max_age:
                error = f"not delivered within max_age ({settings.max_age:g}s)"
                error += f"; last error: {d.last_error}" if d.last_error else ""
                self.released |= last
                self.receipts[d.id] = _unsendable(ctx, d, now, error, release=last)
                continue
            try:
                alert, group = d.alert(), d.group()
            except ValueError as exc:
                self.released |= last
                error = f"stored alert is unreadable: {exc}"
                self.receipts[d.id] = _unsendable(ctx, d, now, error, release=last)
                continue
            window = settings.dedup_window
            if (
                window > 0
                and not _judged(deliveries, i)
                and is_duplicate(d.status, store.sent_times(d.fingerprint, d.channel), now, window)
            ):
                store.mark_delivered(d, owner, now, deduplicated=True, release=last)
                self.released |= last
                self.receipts[d.id] = _ours(d, outcome=Outcome.DEDUPLICATED)
                continue
            if not (d is claim.deliveries[0] and claim.started):  # its slot is taken
                ids = [x.id for x in claim.deliveries if x.id not in self.receipts]
                limit = ctx.rate_limits.get(d.channel)
                wait = store.start_attempt(d.channel, owner, ids, now, settings.lease, limit)
                if wait == LEASE_LOST:
                    log.warning(
                        "outbox: lost the lease on channel %s; another worker has it", d.channel
                    )
                    self.stopped = True
                    return
                if wait > 0:
                    self.stopped = True
                    return
            context = DeliveryContext(
                idempotency_key=d.key, attempt=d.attempts + 1, mentions=d.mentions
            )
            attempt = _attempt(ctx, d, alert, context, group)
            settled = _settle(ctx, d, attempt, last, probe=claim.probe)
            self.receipts[d.id] = settled
            _report(alert.title, settled, ctx.clock.time())
            if settled.outcome is Outcome.QUEUED:
                self.released |= last
                if settled.details.get("rate_limited") or claim.probe or self._tripped():
                    self.stopped = True
                    return
                with self.lock:
                    self.held.add(d.fingerprint)  # the rest of this alert waits; others go on
                continue
            with self.lock:
                self.failures = 0
            self.released |= last

    def _tripped(self) -> bool:
        """Count a retryable failure; whether the channel's circuit would open now, so
        the claim stops rather than try every other alert against a failing provider."""
        breaker = self.ctx.settings.breaker
        with self.lock:
            self.failures += 1
            return breaker is not None and self.failures >= breaker.threshold


def run_digest(ctx: SendContext, claim: Claim) -> dict[int, Receipt]:
    """Send ``claim``'s deliveries as one digest message and record each as delivered
    by it; when it cannot be sent, each is retried as its own failure would be."""
    store, settings, owner = ctx.store, ctx.settings, ctx.owner
    channel, deliveries = claim.channel, claim.deliveries
    receipts: dict[int, Receipt] = {}
    folded: list[tuple[Delivery, Alert]] = []
    released = False
    try:
        now = ctx.clock.time()
        for d in deliveries:
            try:
                folded.append((d, d.alert()))
            except ValueError as exc:
                error = f"stored alert is unreadable: {exc}"
                receipts[d.id] = _unsendable(ctx, d, now, error)
        if not folded:
            return receipts
        ids = [d.id for d, _ in folded]
        limit = ctx.rate_limits.get(channel)
        if store.start_attempt(channel, owner, ids, now, settings.lease, limit) != 0:
            return receipts  # the window filled or the lease was lost: try again later
        digest = build_digest(channel, [a for _, a in folded])
        mentions = tuple(dict.fromkeys(m for d, _ in folded for m in d.mentions))
        key = delivery_key(digest, channel)
        context = DeliveryContext(idempotency_key=key, attempt=1, mentions=mentions)
        attempt = _attempt(ctx, folded[0][0], digest, context)
        now = ctx.clock.time()
        if attempt.ok:
            receipt = attempt.receipt()
            by = f"digest {digest.fingerprint}"
            by += f" (message {receipt.message_id})" if receipt.message_id else ""
            store.mark_folded([d for d, _ in folded], owner, now, by)
            released = True
            extra = {"digest": digest.fingerprint, "folded": len(folded)}
            for d, _ in folded:
                receipts[d.id] = _ours(d, receipt, extra=extra)
            log.info("outbox: %s: %d waiting deliveries told in one digest", channel, len(folded))
            return receipts
        for d, _ in folded:
            receipts[d.id] = _settle(ctx, d, attempt, False)
    finally:
        if not released:
            store.end_lane(channel, owner, ctx.clock.time(), [d.id for d in deliveries])
    return receipts


def _unsendable(
    ctx: SendContext, d: Delivery, now: float, error: str, *, release: bool = False
) -> Receipt:
    """Keep ``d`` as a dead letter without an attempt (too old, or unreadable)."""
    ctx.store.mark_dead(d, ctx.owner, now, error, count_attempt=False, release=release)
    return _ours(d, outcome=Outcome.FAILED, error=redact(error))


def _report(title: str, receipt: Receipt, now: float) -> None:
    """One line for a settled attempt, saying what the outbox does next."""
    channel, error, details = receipt.channel, receipt.error, receipt.details or {}
    if receipt.ok:
        args = (channel, receipt.outcome.value, title, receipt.attempts)
        deliveries.info("%s: %s %r (%d attempt(s))", *args)
    elif receipt.outcome is Outcome.QUEUED:
        wait = max((receipt.next_attempt_at or now) - now, 0.0)
        log_at = deliveries.info if details.get("rate_limited") else deliveries.warning
        log_at("%s: queued %r, next attempt in %.1fs: %s", channel, title, wait, error)
    else:
        dead = details.get("delivery_id")
        deliveries.warning("%s: failed %r, kept as dead letter %s: %s", channel, title, dead, error)


def _judged(deliveries: list[Delivery], i: int) -> bool:
    """Whether the dedup check that wrote delivery ``i`` still holds, so it need not be
    read again: it was written with this claim (the claim holds the channel since), and
    nothing before it in the claim has its fingerprint (a send that would change it).
    """
    d = deliveries[i]
    return d.loaded is not None and all(x.fingerprint != d.fingerprint for x in deliveries[:i])


def _attempt(
    ctx: SendContext,
    d: Delivery,
    alert: Alert,
    context: DeliveryContext,
    group: AlertGroup | None = None,
) -> Attempt:
    """One attempt; its send slot was taken with the claim (``start_attempt``)."""
    try:
        return ctx.deliverer.attempt(d.channel, alert, context, paced=True, group=group)
    except Exception as exc:  # attempt promises not to raise; if it does, retry later
        log.exception("outbox: delivering to %s raised", d.channel)
        error = redact(f"{type(exc).__name__}: {exc}")
        return Attempt(d.channel, False, fingerprint=d.fingerprint, error=error, retryable=True)


def _settle(
    ctx: SendContext, d: Delivery, attempt: Attempt, last: bool, *, probe: bool = False
) -> Receipt:
    """Record ``attempt`` for ``d``: delivered, back to pending, or dead; its receipt.

    A retry ends the claim, and so does ``last``: the lease is released in the same
    transaction then.
    """
    store, settings, owner = ctx.store, ctx.settings, ctx.owner
    now = ctx.clock.time()
    tries = d.attempts + 1
    if attempt.ok:
        # The claim's last send: its record may ride with the next write (group commit).
        store.mark_delivered(d, owner, now, release=last, defer=last and settings.group_commit)
        if probe:  # the provider is back: what waits out a backoff from the outage goes now
            store.release_backlog(d.channel, now)
        # Named as _ours() names it, built once: this runs for every delivery sent.
        return attempt.receipt(extra={**_names(d), "attempt": tries})
    receipt = attempt.receipt()
    error = redact(receipt.error or "delivery failed")
    retry_after = attempt.retry_after
    if attempt.rate_limited:
        # Pacing, not failure: the delivery keeps its place and its attempt count; the
        # whole channel pauses past the provider's window.
        limit = ctx.rate_limits.get(d.channel)
        pause = retry_after if retry_after is not None else (limit.per if limit else 1.0)
        until = now + pause
        store.mark_retry(d, owner, now, d.next_attempt_at, error, count_attempt=False,
                         block_until=until, release=last)  # fmt: skip
        return _ours(d, receipt, outcome=Outcome.QUEUED, error=error, next_attempt_at=until)
    if not attempt.retryable:
        store.mark_dead(d, owner, now, error, release=last)
        return _ours(d, receipt, outcome=Outcome.FAILED, error=error)
    if tries >= settings.max_attempts:
        error = f"gave up after {tries} attempts: {error}"
        store.mark_dead(d, owner, now, error, release=last)
        return _ours(d, receipt, outcome=Outcome.FAILED, error=error)
    next_at = now + settings.backoff.delay(tries, ctx.rng, retry_after)
    if next_at - d.enqueued_at > settings.max_age:
        error = f"gave up: the next attempt would be past max_age ({settings.max_age:g}s): {error}"
        store.mark_dead(d, owner, now, error, release=last)
        return _ours(d, receipt, outcome=Outcome.FAILED, error=error)
    store.mark_retry(d, owner, now, next_at, error, breaker=settings.breaker, release=last)
    return _ours(d, receipt, outcome=Outcome.QUEUED, error=error, next_attempt_at=next_at)


#: The former name of :func:`send_claim`, for runners written against it.
run_lane = send_claim
