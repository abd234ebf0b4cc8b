"""Durable delivery: write every delivery first, then deliver due work, in order.

:class:`OutboxDelivery` joins the store, the policies and a runner around a
:class:`~notifier.deliverer.Deliverer` (one isolated, timed attempt on a configured
channel, which never raises), or a plain function ``deliver(channel_name, alert,
DeliveryContext) -> Receipt``.

* :meth:`OutboxDelivery.submit` writes deliveries, delivers what it can now, and returns
  a receipt for each: delivered, deduplicated, failed, or queued for later;
* :meth:`OutboxDelivery.drain` delivers everything due now, waiting for rate limits and
  provider pauses, then returns (``notifier worker --once``);
* :meth:`OutboxDelivery.run_forever` keeps delivering until stopped (``notifier worker``).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from notifier.attempt import Attempt
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.deliverer import ChannelInfo, Deliverer
from notifier.errors import OutboxError, OutboxWriteError
from notifier.kinds import RateLimit
from notifier.models import Alert, DeliveryContext, Receipt
from notifier.outbox.attempts import SendLogPacer
from notifier.outbox.claiming import ClaimTerms, Wake
from notifier.outbox.digest import default_threshold
from notifier.outbox.records import (
    Claim,
    DeliveryState,
    DrainReport,
    Enqueued,
    NewDelivery,
    Round,
    receipts_for,
)
from notifier.outbox.runner import InlineRunner, Runner, ThreadPoolRunner, owner_alive, worker_id
from notifier.outbox.sending import SendContext, send_claim
from notifier.outbox.settings import OutboxSettings
from notifier.outbox.store import OutboxStore
from notifier.ratelimit import window

log = logging.getLogger("notifier.outbox")

MAINTENANCE_EVERY = 60.0  # seconds between pruning runs of a long-lived worker
LIVENESS_EVERY = 2.0  # seconds between looks for leases of stopped workers on this host
RENEWALS = 3  # lease renewals per lease period while claims run
_MIN_WAIT = 0.001
_WAITABLE = ("ready", "rate_limit", "blocked")  # what drain() waits out
_CIRCUITS = "SELECT name, circuit FROM channels ORDER BY name"

DeliverFn = Callable[[str, Alert, DeliveryContext], Receipt]


class FunctionDeliverer:
    """A :class:`Deliverer` over a plain ``deliver`` function that returns receipts
    (tests, and callers from before the deliverer): it knows no channel's facts."""

    def __init__(self, deliver: DeliverFn) -> None:
        self.deliver = deliver

    @property
    def channels(self) -> Mapping[str, ChannelInfo]:
        return {}

    def attempt(
        self, channel: str, alert: Alert, context: DeliveryContext, *, paced: bool = False
    ) -> Attempt:
        return Attempt.from_receipt(self.deliver(channel, alert, context))

    def pace_with(self, pacers: Mapping[str, object]) -> None:
        pass


class OutboxDelivery:
    """Delivers through ``deliverer`` with everything written to ``store`` first."""

    def __init__(
        self,
        store: OutboxStore,
        deliverer: Deliverer | DeliverFn,
        *,
        settings: OutboxSettings | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        runner: Runner | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
        concurrency: Mapping[str, int] | None = None,
        digests: Mapping[str, int] | None = None,
        identities: Mapping[str, str] | None = None,
        origin: str = "",
    ) -> None:
        """
        :param deliverer: the configured channels; their facts (rate limits, workers,
            digest thresholds, identities) are the defaults of the parameters below,
            and from now on it paces them with the file's shared send log. A plain
            function returning receipts knows no facts.
        :param concurrency: ``{channel: workers}``: deliveries of different alerts a
            channel sends at once (1 when not given).
        :param digests: ``{channel: threshold}``: waiting deliveries past which they are
            folded into one digest message (see :mod:`notifier.outbox.digest`).
        :param identities: ``{channel: identity}`` of the channels this process has
            (see :mod:`notifier.identity`): only their deliveries are delivered
            here. ``None``: every channel in the file.
        :param origin: the configuration file, stamped on what is written.
        """
        if not isinstance(deliverer, Deliverer):
            deliverer = FunctionDeliverer(deliverer)
        channels = deliverer.channels
        if rate_limits is None:
            rate_limits = {n: c.rate_limit for n, c in channels.items() if c.rate_limit}
        if concurrency is None:
            concurrency = {n: c.workers for n, c in channels.items()}
        if digests is None:
            digests = _digests(channels.values())
        if identities is None and channels:
            identities = {n: c.identity for n, c in channels.items()}
        self.deliverer = deliverer
        self.store = store
        if identities is not None:
            store.serve(identities, origin)
        self.settings = settings or OutboxSettings()
        self.rate_limits = dict(rate_limits or {})
        self.clock = clock
        self.owner = owner or worker_id()
        self._own_runner = runner is None
        self.runner = runner or ThreadPoolRunner(self.settings.workers)
        # A runner of this process's threads gains nothing from being handed one claim;
        # any other runner (one that runs claims elsewhere) gets every claim.
        self._inline = isinstance(self.runner, ThreadPoolRunner | InlineRunner)
        self._stop = threading.Event()
        self._stop_events: list[threading.Event] = [self._stop]
        self._last_maintenance = float("-inf")
        self._recovered = False
        self._background: threading.Thread | None = None
        # Channels whose claims this engine is running, for concurrent submit() calls.
        self._busy: collections.Counter[str] = collections.Counter()
        self._ended = 0  # claims run to their end, for submit() to notice one just ended
        self._running = threading.Condition()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._last_liveness = float("-inf")
        self.digests = dict(digests or {})
        # Each send takes one slot, from the send log every process on the file shares.
        deliverer.pace_with(
            {n: SendLogPacer(store, n, limit, clock) for n, limit in self.rate_limits.items()}
        )
        self._send = SendContext(
            store=store,
            deliverer=deliverer,
            settings=self.settings,
            rate_limits=self.rate_limits,
            clock=clock,
            owner=self.owner,
            rng=rng or random.Random(),
            stopping=self.stopping,
            concurrency=dict(concurrency or {}),
            pool=self._pool,
        )

    def _pool(self, channel: str, workers: int) -> ThreadPoolExecutor:
        """The threads a channel's claim sends different alerts on at once."""
        with self._pools_lock:
            pool = self._pools.get(channel)
            if pool is None:
                size = max(workers, self._send.concurrency.get(channel, 1))
                pool = ThreadPoolExecutor(size, thread_name_prefix=f"notifier-outbox-{channel}")
                self._pools[channel] = pool
            return pool

    @classmethod
    def open(
        cls, settings: OutboxSettings, deliverer: Deliverer | DeliverFn, **kwargs: object
    ) -> OutboxDelivery:
        """Open the store ``settings`` names and build the engine on it."""
        store = OutboxStore.open(
            settings.path,
            busy_timeout=settings.busy_timeout,
            synchronous=settings.synchronous,
            file_mode=settings.file_mode,
            dir_mode=settings.dir_mode,
        )
        return cls(store, deliverer, settings=settings, **kwargs)  # type: ignore[arg-type]

    def stopping(self) -> bool:
        return any(event.is_set() for event in self._stop_events)

    # -- writing and delivering ----------------------------------------------------------

    def enqueue(self, items: Iterable[NewDelivery]) -> list[Enqueued]:
        """Write deliveries without delivering them."""
        return self.store.enqueue_many(
            items, now=self.clock.time(), dedup_window=self.settings.dedup_window
        )

    def submit(self, items: Iterable[NewDelivery]) -> list[Receipt]:
        """Write deliveries, deliver what is due now (without waiting), receipt each.

        A delivery that could not be finished now is ``queued`` with its next attempt
        time; a worker (or a later call) delivers it.

        :raises OutboxWriteError: the deliveries could not be written (a full disk, a
            locked or broken file); none of them was written or attempted.
        """
        try:
            if not self._recovered:
                self.recover()
            start = self.clock.time()  # the deliveries written now are due at this time
            # Claiming in the writing transaction saves a transaction per dispatch; a claim
            # held elsewhere, or older work ahead, is left to the rounds below.
            with self._running:  # claimed and counted busy in one step: see _behind_own_claim
                enqueued, claims = self.store.enqueue_and_claim(
                    items, now=start, dedup_window=self.settings.dedup_window, terms=self._terms
                )
                self._busy.update(c.channel for c in claims)
        except OutboxError as exc:  # the transaction rolled back: nothing written or sent
            raise OutboxWriteError(str(exc), retryable=exc.retryable) from exc
        # Everything written before ours is due by now (another thread may have taken its
        # start time after ours and written first); retries scheduled later are not.
        due_by = self.clock.time()
        waiting = {e.id: e.channel for e in enqueued if e.id is not None}
        attempted = dict(self._run(claims).receipts) if claims else {}
        for id_ in attempted:
            waiting.pop(id_, None)
        # Every delivery written has a receipt: done, without a claim that finds nothing.
        while waiting and not self.stopping():
            ended = self._ended  # read before claiming: a claim ending after it is news
            # Only the channels written to: other channels' backlogs are the worker's.
            done = self.process(due_by=due_by, channels=set(waiting.values()))
            attempted.update(done.receipts)
            for id_ in done.receipts:
                waiting.pop(id_, None)
            if not done.claimed and not self._behind_own_claim(waiting, ended):
                break
        return self.receipts(enqueued, attempted)

    @functools.cached_property
    def _terms(self) -> ClaimTerms:
        settings = self.settings
        return ClaimTerms(
            self.owner,
            settings.lease,
            settings.batch_size,
            self.rate_limits,
            settings.breaker,
            self.store.identities,
            self.digests,
        )

    def _behind_own_claim(self, waiting: dict[int, str], ended: int) -> bool:
        """Wait while another thread of this process delivers a channel we have work on.

        A concurrent ``submit`` (or the background worker) holds the channel's lease and
        our deliveries are queued behind its batch; once it lets go we claim them, so a
        burst of concurrent dispatches is delivered now, not left for a worker. Claims are
        counted busy under the same lock they are claimed under, so a claim is never seen
        taken but not yet busy.

        :param ended: the count of this engine's finished claims before our last claim;
            a claim that finished since may have been the one in our way: claim again.
        :return: whether to claim again, or there is nothing to wait for.
        """
        with self._running:
            if self._ended == ended:
                busy = {channel for channel, n in self._busy.items() if n > 0}
                if not busy & set(waiting.values()):
                    return False
                self._running.wait(self.settings.poll_interval)
        for id_, d in self.store.get(list(waiting)).items():  # settled by the other thread?
            if d.state not in (DeliveryState.PENDING, DeliveryState.INFLIGHT):
                waiting.pop(id_)
        return bool(waiting)

    def receipts(
        self, enqueued: Iterable[Enqueued], attempted: Mapping[int, Receipt] | None = None
    ) -> list[Receipt]:
        """A receipt for each written delivery: what was tried now, else its stored state."""
        enqueued, attempted = list(enqueued), attempted or {}
        wanted = [e.id for e in enqueued if e.id is not None and e.id not in attempted]
        return receipts_for(enqueued, attempted, self.store.get(wanted) if wanted else {})

    def process(self, due_by: float | None = None, channels: Iterable[str] | None = None) -> Round:
        """Claim due deliveries and deliver them: channels in parallel, each alert in order.

        The first call also recovers what stopped workers on this host left in flight.

        :param due_by: only deliveries due by then (default: now).
        :param channels: only on these channels (default: every channel).
        """
        if not self._recovered:
            self.recover()
        terms = self._terms
        with self._running:  # claimed and counted busy in one step: see _behind_own_claim
            claims = self.store.claim_due(
                self.clock.time(),
                terms.limit,
                terms.owner,
                terms.lease,
                rate_limits=terms.rate_limits,
                breaker=terms.breaker,
                due_by=due_by,
                terms=terms,
                channels=channels,
            )
            self._busy.update(c.channel for c in claims)
        return self._run(claims) if claims else Round(0, {})

    def _run(self, claims: list[Claim]) -> Round:
        """Deliver claims claimed and counted busy: channels in parallel, each alert in order."""
        channels = [c.channel for c in claims]
        receipts: dict[int, Receipt] = {}
        self._keep_leases()
        failure: BaseException | None = None
        try:
            if len(claims) == 1 and self._inline:
                # One claim: run it here; a hand-off to a pool thread only costs time.
                receipts.update(send_claim(self._send, claims[0]))
            else:
                futures = [self.runner.submit(send_claim, self._send, claim) for claim in claims]
                for future in futures:  # wait for every claim before reporting any failure
                    try:
                        receipts.update(future.result())
                    except BaseException as exc:
                        failure = failure or exc
        finally:
            with self._running:
                self._busy.subtract(channels)
                self._ended += 1
                self._running.notify_all()
        if failure is not None:
            raise failure
        return Round(sum(len(c.deliveries) for c in claims), receipts)

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

    def _idle_wait(self) -> float:
        now = self.clock.time()
        wakes = self.store.wakes(now, rate_limits=self.rate_limits, breaker=self.settings.breaker)
        poll = self.settings.poll_interval
        soonest = min((w.ready_at for w in wakes), default=now + poll)
        return min(max(soonest - now, 0.01), poll)

    # -- what a server or a monitor asks of the outbox ---------------------------------
    # A process that accepts deliveries and delivers them itself (``notifier serve``)
    # needs these answers; they keep it away from the store's file and tables.

    @property
    def path(self) -> str:
        """The outbox file (``:memory:`` for one in memory)."""
        return self.store.path

    def writable(self) -> str | None:
        """Why a delivery could not be written now, or ``None`` when it could.

        Takes the write lock in an empty transaction, as every write must first, so a
        file another process holds beyond ``busy_timeout``, a full disk or a file moved
        away are each answered with their one-line reason.
        """
        try:
            with self.store.db.write("checking it is writable"):
                pass
        except OutboxError as exc:
            return str(exc)
        return None

    def idle_wait(self) -> float:
        """Seconds a delivery loop that found nothing to claim may wait before it looks
        again: until the soonest queued delivery falls due (a backoff ends, a rate
        window or a provider's pause opens), at most ``poll_interval``. A loop that is
        told of new deliveries (as ``notifier serve`` is) wakes earlier for them.

        :raises OutboxError: the outbox cannot be read.
        """
        return self._idle_wait()

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        """``{channel: {state: number}}`` of every delivery the file keeps, whichever
        process wrote or delivered it.

        :raises OutboxError: the outbox cannot be read.
        """
        return self.store.counts()

    def circuit_states(self) -> dict[str, str]:
        """``{channel: "closed" | "open" | "half_open"}``: each channel's circuit breaker
        as the file holds it, so every process sharing it reads the same.

        :raises OutboxError: the outbox cannot be read.
        """
        with self.store.db.read("reading circuit states") as conn:
            return dict(conn.execute(_CIRCUITS).fetchall())

    # -- housekeeping ------------------------------------------------------------------

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
        self.store.purge(DeliveryState.DELIVERED, older_than=now - self.settings.keep_delivered)

    def close(self) -> None:
        """Stop claims between deliveries, shut our runner down, close the store."""
        self._stop.set()
        if self._background is not None:
            self._background.join()
        if self._own_runner:
            self.runner.shutdown(wait=True)
        with self._pools_lock:
            for pool in self._pools.values():
                pool.shutdown(wait=True)
            self._pools.clear()
        self.store.close()

    def __enter__(self) -> OutboxDelivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _digests(channels: Iterable[ChannelInfo]) -> dict[str, int]:
    """``{channel: threshold}`` of the channels that fold a backlog into a digest."""
    found = {}
    for c in channels:
        threshold = c.digest_threshold
        if threshold is None:
            threshold = default_threshold(c.rate_limit)
        if threshold:
            found[c.name] = threshold
    return found


def attach(
    deliverer: Deliverer,
    settings: OutboxSettings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    config_file: str = "",
    runner: Runner | None = None,
) -> OutboxDelivery:
    """An outbox engine that delivers through ``deliverer``, for the configuration in
    ``config_file``; it paces the deliverer's channels from now on."""
    return OutboxDelivery.open(
        settings, deliverer, clock=clock, runner=runner, origin=_origin(config_file)
    )


def _origin(file: str) -> str:
    """The configuration file as stamped on deliveries: absolute, or as given when it
    names no file (``<inline>``)."""
    return os.path.abspath(file) if file and not file.startswith("<") else file
