"""Lanes: where deliveries run, each isolated, paced and held to its time budget.

Each delivery (one alert on one channel) runs on its channel's lane, a bounded worker
pool of ``[dispatcher] workers`` threads (started on demand), paced by the channel's rate
limit, and is isolated: an exception becomes a failed receipt, and a delivery that
outlives its ``delivery_timeout`` gets a failed :class:`DeliveryTimeout` receipt while
the others carry on. Lanes are per channel so a channel whose deliveries hang ties up
only its own threads; once all of them are hung, its queued deliveries fail at once
instead of waiting.

A lone delivery to a kind whose sends are :attr:`~notifier.kinds.ChannelKind.bounded`
(they end by the deadline in :mod:`notifier.deadline` on their own) runs on the calling
thread: with nothing to run beside it, the hand-off to a lane thread and back would only
add two thread wake-ups.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from logging import DEBUG
from typing import Any

import attrs

from notifier import deadline
from notifier.attempt import Attempt
from notifier.errors import DeliveryTimeout, NotifierError, RateLimited
from notifier.kinds import ChannelKind, ChannelSpec
from notifier.models import Alert, DeliveryContext
from notifier.pacing import Pacer
from notifier.plugins import PluginHost
from notifier.redact import redact, scrub_exception

log = logging.getLogger(__name__)
#: One line per finished delivery: INFO when it succeeded, WARNING when it failed. Its
#: own logger so that a program which shows receipts itself (``notifier send``) can leave
#: these out instead of saying everything twice.
deliveries = logging.getLogger("notifier.deliveries")

# How often the gatherer looks for deliveries past their deadline while none finishes.
_POLL = 0.05


@attrs.define
class LiveChannel:
    """A configured channel, built and ready: its spec, kind, plugin object and the lane
    its deliveries run on."""

    spec: ChannelSpec
    kind: ChannelKind
    channel: Any
    lane: ThreadPoolExecutor
    workers: int
    # Deliveries past their deadline whose threads have not come back yet.
    hung: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    # One per delivery running, on a lane thread or on a caller's: ``workers`` at most.
    slots: threading.BoundedSemaphore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(self.workers)

    @property
    def saturated(self) -> bool:
        with self.lock:
            return self.hung >= self.workers


@attrs.define(eq=False)
class LaneTask:
    """One alert on one live channel, as it runs on the channel's lane (or inline).

    Not :class:`notifier.outbox.Delivery`, which is a delivery as the outbox stores it.
    """

    live: LiveChannel
    alert: Alert
    delivery: DeliveryContext
    # The channel's pacer in force; its first send takes a slot of it unless ``paced``.
    pacer: Pacer | None = None
    # The caller took the first send's slot already (the outbox, with its claim).
    paced: bool = False
    started: float | None = None
    future: Future[Attempt] | None = None
    attempt: Attempt | None = None
    abandoned: bool = False
    # The caller (the outbox) records the outcome, retries a retryable failure, and says
    # so itself: logging "failed" here would contradict its ``queued``.
    retried_by_caller: bool = False


class Lanes:
    """Runs deliveries on their channels' lanes and turns every outcome into an
    :class:`~notifier.attempt.Attempt`."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def run(self, tasks: list[LaneTask]) -> list[Attempt]:
        """Deliver all of ``tasks`` concurrently; their attempts, in the same order."""
        if len(tasks) == 1 and tasks[0].live.kind.bounded:
            # Its sends end by the deadline on their own: the two thread hand-offs to the
            # lane and back would cost more than the rest of the dispatcher together.
            task = tasks[0]
            self._finish(task, self._inline(task))
            return [task.attempt]  # type: ignore[list-item]
        for task in tasks:
            task.future = task.live.lane.submit(self._run, task)
        self._gather(tasks)
        return [task.attempt for task in tasks]  # type: ignore[misc]

    def _inline(self, task: LaneTask) -> Attempt:
        """Run ``task`` on the calling thread, within the channel's ``workers``."""
        live = task.live
        if live.saturated:  # every worker stuck past its deadline: do not queue behind them
            return self._timed_out(task, hung=True)
        if not live.slots.acquire(timeout=live.spec.timeout):
            name, timeout = live.spec.name, live.spec.timeout
            message = (
                f"channel {name!r} not tried: all {live.workers} of its workers stayed busy "
                f"for {timeout:g}s (delivery_timeout)"
            )
            return self._failed(task, DeliveryTimeout(message))
        try:
            return self._attempt(task)
        finally:
            live.slots.release()

    def _run(self, task: LaneTask) -> Attempt:
        live = task.live
        live.slots.acquire()  # lane threads are ``workers`` many: waits only for callers'
        try:
            return self._attempt(task)
        finally:
            live.slots.release()
            with live.lock:
                if task.abandoned:
                    live.hung -= 1

    def _attempt(self, task: LaneTask) -> Attempt:
        live = task.live
        if task.pacer is not None and not task.paced:
            task.pacer.acquire()
        task.started = time.monotonic()
        try:
            with deadline.within(live.spec.timeout):
                result = self.host.send(live.channel, task.alert, task.delivery)
        except Exception as exc:
            return self._failed(task, exc)
        took = time.monotonic() - task.started
        if took > live.spec.timeout and live.kind.bounded:
            log.warning(
                "channel %s took %.1fs, past its %gs delivery_timeout, though kind %r "
                "declares its sends bounded",
                live.spec.name,
                took,
                live.spec.timeout,
                live.spec.kind,
            )
        return Attempt(
            live.spec.name,
            True,
            kind=live.spec.kind,
            fingerprint=task.alert.fingerprint,
            attempts=result.attempts,
            latency_ms=took * 1000,
            message_id=result.message_id,
            parts=result.parts,
            details=result.details,
        )

    def _failed(self, task: LaneTask, exc: BaseException) -> Attempt:
        live = task.live
        scrub_exception(exc)
        code: int | str | None = None
        request_id: str | None = None
        retry_after: float | None = None
        if isinstance(exc, NotifierError):
            text, attempts, retryable = str(exc), exc.attempts, exc.retryable
            code, request_id, retry_after = exc.code, exc.request_id, exc.retry_after
        else:
            # A plugin bug or an untranslated library error: keep it, try again later.
            text, attempts, retryable = f"{type(exc).__name__}: {exc}", 1, True
            log.debug("channel %s raised", live.spec.name, exc_info=exc)
        rate_limited = isinstance(exc, RateLimited)
        if rate_limited and task.pacer is not None:
            task.pacer.block_for(retry_after or task.pacer.limit.per)
        started = task.started or time.monotonic()
        return Attempt(
            live.spec.name,
            False,
            kind=live.spec.kind,
            fingerprint=task.alert.fingerprint,
            attempts=attempts,
            latency_ms=(time.monotonic() - started) * 1000,
            error=redact(text),
            retryable=retryable,
            rate_limited=rate_limited,  # the outbox pauses the channel, not the delivery
            retry_after=retry_after,
            code=code,
            request_id=request_id,
        )

    def _gather(self, tasks: list[LaneTask]) -> None:
        pending: dict[Future[Attempt], LaneTask] = {t.future: t for t in tasks if t.future}
        # Completions arrive on a queue; deadlines and saturated lanes are checked by a
        # scan at most every _POLL seconds. Scanning (and waiting on) every pending
        # future after each completion made a large batch quadratic.
        finished: queue.SimpleQueue[Future[Attempt]] = queue.SimpleQueue()
        for future in pending:
            future.add_done_callback(finished.put)
        scan_at = 0.0
        while pending:
            now = time.monotonic()
            if now >= scan_at:
                scan_at = now + self._scan(pending)
                if not pending:
                    break
            try:
                future = finished.get(timeout=max(scan_at - now, 0.0))
            except queue.Empty:
                continue
            while True:
                # Futures already given a timeout receipt, or cancelled, are not pending.
                task = pending.pop(future, None)
                if task is not None:
                    self._finish(task, future.result())
                try:
                    future = finished.get_nowait()
                except queue.Empty:
                    break

    def _scan(self, pending: dict[Future[Attempt], LaneTask]) -> float:
        """Give timeout receipts to deliveries past their deadline (or stuck behind a
        saturated lane); return how long until the next scan is due."""
        now = time.monotonic()
        poll = _POLL
        for future, task in list(pending.items()):
            if future.done():
                continue
            if task.started is None:
                if task.live.saturated and future.cancel():
                    del pending[future]
                    self._finish(task, self._timed_out(task, hung=True))
                continue
            left = task.started + task.live.spec.timeout - now
            if left > 0:
                poll = min(poll, left)
                continue
            with task.live.lock:
                if future.done():
                    continue
                task.abandoned = True
                task.live.hung += 1
            del pending[future]
            self._finish(task, self._timed_out(task))
        return poll

    def _finish(self, task: LaneTask, attempt: Attempt) -> None:
        task.attempt = attempt
        self._report(task, attempt)

    def _report(self, task: LaneTask, attempt: Attempt) -> None:
        alert = task.alert
        if (
            task.retried_by_caller
            and not log.isEnabledFor(DEBUG)
            and not self.host.observes_deliveries
        ):
            return  # the caller gives the receipt and logs it: nobody would see this one
        receipt = attempt.receipt(retried=task.retried_by_caller)
        if task.retried_by_caller:
            log.debug(
                "%s: attempt %s %r: %s",
                receipt.channel,
                receipt.outcome.value,
                alert.title,
                receipt.error or receipt.message_id,
            )
        elif receipt.ok:
            deliveries.info(
                "%s: %s %r in %.1f ms (%d attempt(s))",
                receipt.channel,
                receipt.outcome.value,
                alert.title,
                receipt.latency_ms,
                receipt.attempts,
            )
        else:
            deliveries.warning(
                "%s: %s %r: %s", receipt.channel, receipt.outcome.value, alert.title, receipt.error
            )
        self.host.delivery_finished(alert, receipt)

    def _timed_out(self, task: LaneTask, *, hung: bool = False) -> Attempt:
        name, timeout = task.live.spec.name, task.live.spec.timeout
        if hung:
            message = (
                f"channel {name!r} not tried: all {task.live.workers} of its workers are "
                f"stuck in deliveries past their {timeout:g}s delivery_timeout"
            )
        else:
            message = f"channel {name!r} did not finish within {timeout:g}s (delivery_timeout)"
        return self._failed(task, DeliveryTimeout(message))
