"""Where and when claims run: the runner seam, and the engine's background loops.

The outbox hands each claim to a :class:`Runner` as
``runner.submit(fn, *args)`` and waits on the returned future. The embedded default,
:class:`ThreadPoolRunner`, runs claims on threads of this process. Nothing else in the
outbox knows how a claim is run; ``docs/outbox.md`` shows how a Celery runner would plug
in without changing channels or configuration.

:class:`WorkerLoops` is the part of :class:`~notifier.outbox.engine.OutboxDelivery`
that keeps delivering over time: ``drain`` (``notifier worker --once``), ``run_forever``
(``notifier worker``), the background thread, lease renewal while claims run, recovery
of what stopped workers left, and pruning.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from notifier.clock import Clock
from notifier.errors import OutboxError
from notifier.kinds import RateLimit
from notifier.outbox.records import DeliveryState, DrainReport, Round
from notifier.outbox.settings import OutboxSettings
from notifier.outbox.store import dedup_memory
from notifier.ratelimit import window

if TYPE_CHECKING:
    from notifier.outbox.channels import Wake
    from notifier.outbox.store import OutboxStore

log = logging.getLogger("notifier.outbox")

MAINTENANCE_EVERY = 60.0  # seconds between pruning runs of a long-lived worker
LIVENESS_EVERY = 2.0  # seconds between looks for leases of stopped workers on this host
RENEWALS = 3  # lease renewals per lease period while claims run
_MIN_WAIT = 0.001
_WAITABLE = ("ready", "rate_limit", "blocked")  # what drain() waits out

T = TypeVar("T")


class Runner(Protocol):
    """Runs submitted work somewhere and reports through a ``Future``."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class ThreadPoolRunner:
    """Runs work on a pool of ``max_workers`` threads in this process (the default)."""

    def __init__(self, max_workers: int = 4, *, name: str = "notifier-outbox") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


class InlineRunner:
    """Runs work at once in the caller's thread: deterministic, for tests and tools."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # the future carries it to whoever waits
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        return None


class ChannelPools:
    """The threads each channel's claim sends different alerts on at once."""

    def __init__(self, concurrency: Mapping[str, int]) -> None:
        self._concurrency = concurrency
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def __call__(self, channel: str, workers: int) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(channel)
            if pool is None:
                size = max(workers, self._concurrency.get(channel, 1))
                pool = ThreadPoolExecutor(size, thread_name_prefix=f"notifier-outbox-{channel}")
                self._pools[channel] = pool
            return pool

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.shutdown(wait=True)
            self._pools.clear()


def worker_id() -> str:
    """``host:pid:token``: unique per engine, and says which process holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_alive(owner: str) -> bool:
    """Whether the worker named ``owner`` may still be running.

    Only a process on this host can be checked; anything else counts as alive and its
    leases simply expire.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or sys.platform == "win32":
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class WorkerLoops:
    """Delivering over time: the engine's loops, leases kept, housekeeping.

    Mixed into :class:`~notifier.outbox.engine.OutboxDelivery`, which provides the
    state declared here and :meth:`process`.
    """

    store: OutboxStore
    settings: OutboxSettings
    rate_limits: dict[str, RateLimit]
    clock: Clock
    owner: str
    _stop: threading.Event
    _stop_events: list[threading.Event]
    _running: threading.Condition
    _busy: collections.Counter[str]
    _recovered: bool
    _background: threading.Thread | None
    _heartbeat: threading.Thread | None
    _last_maintenance: float
    _last_liveness: float

    def _start_loops(self) -> None:
        self._stop = threading.Event()
        self._stop_events = [self._stop]
        self._recovered = False
        self._background = None
        self._heartbeat = None
        self._last_maintenance = float("-inf")
        self._last_liveness = float("-inf")

    def process(self, due_by: float | None = None, channels: Iterable[str] | None = None) -> Round:
        raise NotImplementedError  # the engine's

    def stopping(self) -> bool:
        return any(event.is_set() for event in self._stop_events)

    def drain(
        self, until_idle: bool = True, on_wait: Callable[[str], None] | None = None
    ) -> DrainReport:
        """Deliver everything due now; with ``until_idle``, wait out rate limits too.

        Deliveries that are not due when the drain starts (waiting out a backoff or an
        open circuit), and those that fail during it, are left queued.

        :param on_wait: called with one line saying what each wait is for (``waiting
            42 s for channel 'robot''s rate limit (20 per 60 s)``) before it starts;
            without it, the line is logged at INFO.
        """
        start = self.clock.time()
        outcomes: collections.Counter[str] = collections.Counter()
        rounds, waited = 0, 0.0
        while not self.stopping():
            done = self.process(due_by=start)
            rounds += 1
            outcomes.update(r.outcome.value for r in done.receipts.values())
            if done.claimed:
                continue
            if not until_idle:
                break
            now = self.clock.time()
            wakes = self.store.wakes(
                now, rate_limits=self.rate_limits, breaker=self.settings.breaker
            )
            ready = [w for w in wakes if w.head_due_at <= start and w.reason in _WAITABLE]
            if not ready:
                break
            wake = min(ready, key=lambda w: w.ready_at)
            pause = max(wake.ready_at - now, _MIN_WAIT)
            (on_wait or log.info)(self._waiting_for(wake, pause))
            self.clock.sleep(pause)
            waited += pause
        return DrainReport(dict(outcomes), rounds, waited)

    def _waiting_for(self, wake: Wake, pause: float) -> str:
        """One line for a wait of ``drain``: how long, on which channel, for what."""
        seconds = f"{pause:.0f} s" if pause >= 1 else f"{pause:.2g} s"
        channel = wake.channel
        if wake.reason == "rate_limit":
            limit = self.rate_limits.get(channel)
            terms = f" ({limit.count} per {limit.per:g} s)" if limit else ""
            return f"waiting {seconds} for channel {channel}'s rate limit{terms}"
        if wake.reason == "blocked":
            return f"waiting {seconds}: channel {channel}'s provider asked for a pause"
        return f"waiting {seconds} for channel {channel}'s next delivery to fall due"

    def run_forever(self, stop: threading.Event) -> None:
        """Deliver due work until ``stop`` is set; sleep until the next is due."""
        self._stop_events.append(stop)
        try:
            self.recover()
            while not self.stopping():
                try:
                    self._look_after_peers()
                    done = self.process()
                    self.maintain()
                except OutboxError as exc:  # locked or full: say so, keep going
                    log.warning("outbox: %s", exc)
                    stop.wait(self.settings.poll_interval)
                    continue
                if not done.claimed:
                    stop.wait(self._idle_wait())
        finally:
            self._stop_events.remove(stop)

    def start_background(self) -> threading.Thread:
        """Keep delivering retries and backlogs on a daemon thread until :meth:`close`.

        For applications that dispatch from a long-running process instead of running
        ``notifier worker`` beside it.
        """
        if self._background is None:
            self._background = threading.Thread(
                target=self.run_forever, args=(self._stop,), name="notifier-outbox", daemon=True
            )
            self._background.start()
        return self._background

    def _keep_leases(self) -> None:
        """Renew this engine's leases while its claims run, so they can be short: a
        worker killed mid-delivery leaves leases that run out in seconds, not minutes."""
        if self._heartbeat is not None:
            return
        with self._running:
            if self._heartbeat is not None:
                return
            self._heartbeat = threading.Thread(
                target=self._renew_leases, name="notifier-outbox-leases", daemon=True
            )
            self._heartbeat.start()

    def _renew_leases(self) -> None:
        every = max(self.settings.lease / RENEWALS, 0.05)
        while not self._stop.wait(every):
            with self._running:
                busy = any(n > 0 for n in self._busy.values())
            if not busy:
                continue
            try:
                self.store.renew(self.owner, self.clock.time(), self.settings.lease)
            except OutboxError as exc:  # busy or gone: the next beat tries again
                log.warning("outbox: renewing leases failed: %s", exc)

    # -- housekeeping ------------------------------------------------------------------

    def idle_wait(self) -> float:
        """Seconds a delivery loop that found nothing to claim may wait before it looks
        again: until the soonest queued delivery falls due (a backoff ends, a rate
        window or a provider's pause opens), at most ``poll_interval``. A loop that is
        told of new deliveries (as ``notifier serve`` is) wakes earlier for them.

        :raises OutboxError: the outbox cannot be read.
        """
        now = self.clock.time()
        wakes = self.store.wakes(now, rate_limits=self.rate_limits, breaker=self.settings.breaker)
        poll = self.settings.poll_interval
        soonest = min((w.ready_at for w in wakes), default=now + poll)
        return min(max(soonest - now, 0.01), poll)

    _idle_wait = idle_wait

    def recover(self) -> int:
        """Put back deliveries held by workers on this host that are no longer running."""
        back = self.store.recover_orphans(owner_alive, self.clock.time())
        self._recovered = True
        if back:
            log.info("outbox: %d in-flight deliveries of stopped workers queued again", back)
        return back

    def _look_after_peers(self) -> None:
        """Every few seconds, take back what workers on this host that stopped held."""
        now = self.clock.time()
        if now - self._last_liveness >= LIVENESS_EVERY:
            self._last_liveness = now
            self.recover()

    def maintain(self, force: bool = False) -> None:
        """Prune old send times and dedup rows; drop delivered rows past keep_delivered."""
        now = self.clock.time()
        if not force and now - self._last_maintenance < MAINTENANCE_EVERY:
            return
        self._last_maintenance = now
        longest = max((window(r) for r in self.rate_limits.values()), default=0.0)
        self.store.prune(now, dedup_window=self.settings.dedup_window, longest_window=longest)
        self.store.purge(
            DeliveryState.DELIVERED,
            older_than=now - self.settings.keep_delivered,
            remember_since=dedup_memory(now, self.settings.dedup_window),
        )
