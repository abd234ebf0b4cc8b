"""The dispatcher: routes an alert, delivers it to every chosen channel at once.

Each delivery (one alert on one channel) runs on its channel's lane, a bounded worker
pool of ``[dispatcher] workers`` threads (started on demand), paced by the channel's rate
limit, and is isolated: an exception becomes a failed receipt, and a delivery that
outlives its ``delivery_timeout`` gets a failed :class:`DeliveryTimeout` receipt while
the others carry on. Lanes are per channel so a channel whose deliveries hang ties up
only its own threads; once all of them are hung, its queued deliveries fail at once
instead of waiting. The dispatcher fans out over channels itself rather
than through one 1:N hook call, because pluggy stops at the first exception.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.config import Config, load_config
from notifier.errors import (
    ConfigError,
    ConfigIssue,
    DeliveryTimeout,
    NotifierError,
    RateLimited,
    UnsupportedOperation,
)
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec
from notifier.models import (
    Alert,
    DeliveryContext,
    GroupInfo,
    GroupSpec,
    GroupUpdate,
    Outcome,
    Receipt,
    delivery_key,
)
from notifier.plugins import PluginHost
from notifier.ratelimit import SlidingWindow
from notifier.redact import redact, scrub_exception
from notifier.routing import Target, resolve

if TYPE_CHECKING:
    from notifier.outbox import OutboxDelivery, OutboxSettings

log = logging.getLogger(__name__)

# How often the gatherer looks for deliveries past their deadline while none finishes.
_POLL = 0.05


@attrs.define
class LiveChannel:
    """A configured channel, built and ready: its spec, kind, plugin object, pacing and
    the lane its deliveries run on."""

    spec: ChannelSpec
    kind: ChannelKind
    channel: Any
    pacer: SlidingWindow | None
    lane: ThreadPoolExecutor
    workers: int
    # Deliveries past their deadline whose threads have not come back yet.
    hung: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def saturated(self) -> bool:
        with self.lock:
            return self.hung >= self.workers


@attrs.define(eq=False)
class _Task:
    live: LiveChannel
    alert: Alert
    delivery: DeliveryContext
    started: float | None = None
    future: Future[Receipt] | None = None
    receipt: Receipt | None = None
    abandoned: bool = False


class Dispatcher:
    """Routes alerts and delivers them through configured channels.

    Use as a context manager, or call :meth:`close`, to release worker threads, HTTP
    sessions and connections.
    """

    def __init__(
        self,
        config: Config,
        *,
        host: PluginHost | None = None,
        clock: Clock = SYSTEM_CLOCK,
        outbox: OutboxSettings | bool | None = None,
    ) -> None:
        self.config = config
        self.host = host or PluginHost.load()
        self.clock = clock
        workers = config.dispatcher.workers
        observe = self.host.http_request if self.host.observes_http else None
        context = BuildContext(clock=clock, pool_size=workers, observe=observe)
        self.channels: dict[str, LiveChannel] = {}
        issues: list[ConfigIssue] = []
        for name, spec in config.channels.items():
            try:
                built = self.host.build_channel(spec, context)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            except Exception as exc:
                scrub_exception(exc)
                issues.append(ConfigIssue(spec.source, f"channels.{name}", f"buildable: {exc}"))
                continue
            pacer = SlidingWindow(spec.rate_limit, clock) if spec.rate_limit else None
            lane = ThreadPoolExecutor(workers, thread_name_prefix=f"notifier-{name}")
            kind = self.host.kinds[spec.kind]
            self.channels[name] = LiveChannel(spec, kind, built, pacer, lane, workers)
        self._closed = False
        self.outbox: OutboxDelivery | None = None
        if issues:
            self.close()
            raise ConfigError(issues)
        if config.outbox or outbox:
            self._open_outbox(outbox)

    def _open_outbox(self, override: OutboxSettings | bool | None) -> None:
        """Write every delivery to the durable outbox first (``[outbox]``, docs/outbox.md)."""
        from notifier.outbox.attach import attach, settings_from_config

        try:
            settings = settings_from_config(self.config, override)
            self.outbox = attach(self, settings) if settings else None
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        host: PluginHost | None = None,
        outbox: OutboxSettings | bool | None = None,
    ) -> Self:
        """Load plugins and the config file (``path`` or ``$NOTIFIER_CONFIG``), build
        every channel. Raises :class:`ConfigError` listing every problem."""
        host = host or PluginHost.load(env=env)
        config = load_config(path, host, env)
        return cls(config, host=host, clock=clock or SYSTEM_CLOCK, outbox=outbox)

    # -- dispatching ----------------------------------------------------------------

    def targets(self, alert: Alert) -> list[Target]:
        """The channels ``alert`` would go to, with route mentions."""
        return resolve(self.config.routes, self.channels, alert)

    def dispatch(self, alert: Alert) -> list[Receipt]:
        """Deliver ``alert`` to every channel its routes choose, concurrently.

        Never raises for a channel's failure: each channel gets a receipt.
        """
        return self.dispatch_many([alert])

    def dispatch_many(self, alerts: Iterable[Alert]) -> list[Receipt]:
        """Deliver many alerts at once; receipts in alert order, then route order.

        With the outbox, every delivery is written first (one transaction) and what
        cannot be finished now stays queued (receipt outcome ``queued``).
        """
        if self.outbox is not None:
            from notifier.outbox import NewDelivery

            return self.outbox.submit(
                NewDelivery(alert, t.channel, t.mentions)
                for alert in alerts
                for t in self.targets(alert)
            )
        tasks = [
            _Task(self.channels[t.channel], alert, self._context(alert, t))
            for alert in alerts
            for t in self.targets(alert)
        ]
        for task in tasks:
            task.future = task.live.lane.submit(self._run, task)
        self._gather(tasks)
        return [task.receipt for task in tasks]  # type: ignore[misc]

    def deliver(
        self, channel: str, alert: Alert, delivery: DeliveryContext | None = None
    ) -> Receipt:
        """One paced, isolated attempt within the channel's ``delivery_timeout``; never
        raises. Runs on the channel's lane, so a hung plugin costs a lane thread, not the
        caller. The durable outbox calls this for each due delivery.
        """
        live = self.channels[channel]
        task = _Task(live, alert, delivery or self._context(alert, Target(channel)))
        task.future = live.lane.submit(self._run, task)
        self._gather([task])
        return task.receipt  # type: ignore[return-value]

    def _context(self, alert: Alert, target: Target) -> DeliveryContext:
        live = self.channels[target.channel]
        return DeliveryContext(
            idempotency_key=delivery_key(alert, target.channel),
            mentions=target.mentions,
            timeout=live.spec.timeout,
            pace=live.pacer.acquire if live.pacer else None,
        )

    def _run(self, task: _Task) -> Receipt:
        try:
            return self._attempt(task)
        finally:
            live = task.live
            with live.lock:
                if task.abandoned:
                    live.hung -= 1

    def _attempt(self, task: _Task) -> Receipt:
        live = task.live
        if live.pacer is not None:
            live.pacer.acquire()
        task.started = time.monotonic()
        try:
            result = self.host.send(live.channel, task.alert, task.delivery)
        except Exception as exc:
            return self._failed(task, exc)
        return Receipt(
            channel=live.spec.name,
            outcome=Outcome.DELIVERED,
            attempts=result.attempts,
            latency_ms=(time.monotonic() - task.started) * 1000,
            message_id=result.message_id,
            fingerprint=task.alert.fingerprint,
            kind=live.spec.kind,
            details=_details(result.details, parts=result.parts),
        )

    def _failed(self, task: _Task, exc: BaseException) -> Receipt:
        live = task.live
        scrub_exception(exc)
        details: dict[str, Any] = {}
        if isinstance(exc, NotifierError):
            text, attempts, retryable = str(exc), exc.attempts, exc.retryable
            for name in ("code", "request_id"):
                if getattr(exc, name, None) is not None:
                    details[name] = getattr(exc, name)
        else:
            # A plugin bug or an untranslated library error: keep it, try again later.
            text, attempts, retryable = f"{type(exc).__name__}: {exc}", 1, True
            log.debug("channel %s raised", live.spec.name, exc_info=exc)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, RateLimited) and live.pacer is not None:
            live.pacer.block_for(retry_after or live.pacer.limit.per)
        details["retryable"] = retryable
        if isinstance(exc, RateLimited):
            details["rate_limited"] = True  # the outbox pauses the channel, not the delivery
        if retry_after is not None:
            details["retry_after"] = retry_after
        started = task.started or time.monotonic()
        return Receipt(
            channel=live.spec.name,
            outcome=Outcome.FAILED,
            attempts=attempts,
            latency_ms=(time.monotonic() - started) * 1000,
            error=redact(text),
            fingerprint=task.alert.fingerprint,
            kind=live.spec.kind,
            details=details,
        )

    def _gather(self, tasks: list[_Task]) -> None:
        pending: dict[Future[Receipt], _Task] = {t.future: t for t in tasks if t.future}
        # Completions arrive on a queue; deadlines and saturated lanes are checked by a
        # scan at most every _POLL seconds. Scanning (and waiting on) every pending
        # future after each completion made a large batch quadratic.
        finished: queue.SimpleQueue[Future[Receipt]] = queue.SimpleQueue()
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

    def _scan(self, pending: dict[Future[Receipt], _Task]) -> float:
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

    def _finish(self, task: _Task, receipt: Receipt) -> None:
        task.receipt = receipt
        self._report(task.alert, receipt)

    def _report(self, alert: Alert, receipt: Receipt) -> None:
        if receipt.ok:
            log.info(
                "%s: %s %r in %.1f ms (%d attempt(s))",
                receipt.channel,
                receipt.outcome.value,
                alert.title,
                receipt.latency_ms,
                receipt.attempts,
            )
        else:
            log.warning(
                "%s: %s %r: %s", receipt.channel, receipt.outcome.value, alert.title, receipt.error
            )
        self.host.delivery_finished(alert, receipt)

    def _timed_out(self, task: _Task, *, hung: bool = False) -> Receipt:
        name, timeout = task.live.spec.name, task.live.spec.timeout
        if hung:
            message = (
                f"channel {name!r} not tried: all {task.live.workers} of its workers are "
                f"stuck in deliveries past their {timeout:g}s delivery_timeout"
            )
        else:
            message = f"channel {name!r} did not finish within {timeout:g}s (delivery_timeout)"
        log.warning("%s", message)
        return self._failed(task, DeliveryTimeout(message))

    # -- groups ---------------------------------------------------------------------

    def create_group(self, channel: str, group: GroupSpec) -> GroupInfo:
        return self.host.create_group(self._group_channel(channel), group)

    def get_group(self, channel: str, chat_id: str) -> GroupInfo:
        return self.host.get_group(self._group_channel(channel), chat_id)

    def update_group(self, channel: str, chat_id: str, update: GroupUpdate) -> GroupInfo:
        return self.host.update_group(self._group_channel(channel), chat_id, update)

    def _group_channel(self, name: str) -> Any:
        live = self.channels.get(name)
        if live is None:
            known = ", ".join(sorted(self.channels)) or "none"
            raise UnsupportedOperation(f"no channel named {name!r} (configured: {known})")
        if not live.kind.can_create_group:
            able = sorted(k.name for k in self.host.kinds.values() if k.can_create_group)
            raise UnsupportedOperation(
                f"channel {name!r} is of kind {live.spec.kind!r}, which cannot manage group "
                f"chats; kinds that can: {', '.join(able) or 'none installed'}"
            )
        return live.channel

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if getattr(self, "outbox", None) is not None:
            self.outbox.close()  # lets lanes finish the delivery in hand
        for live in self.channels.values():
            # Do not wait: a hung delivery already has its timeout receipt.
            live.lane.shutdown(wait=False, cancel_futures=True)
            close = getattr(live.channel, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception:
                log.exception("closing channel %s failed", live.spec.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _details(details: Mapping[str, Any], *, parts: int) -> dict[str, Any]:
    out = dict(details)
    if parts > 1:
        out["parts"] = parts
    return out
