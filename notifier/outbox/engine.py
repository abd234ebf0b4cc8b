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
import os
import random
import threading
from collections.abc import Iterable, Mapping

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.deliverer import Deliverer, DeliverFn, FunctionDeliverer
from notifier.errors import OutboxError, OutboxWriteError
from notifier.kinds import RateLimit
from notifier.models import Receipt
from notifier.outbox.channels import SendLogPacer
from notifier.outbox.claiming import ClaimTerms
from notifier.outbox.policy import digest_thresholds
from notifier.outbox.records import Claim, DeliveryState, Enqueued, NewDelivery, Round, receipts_for
from notifier.outbox.runner import (
    ChannelPools,
    InlineRunner,
    Runner,
    ThreadPoolRunner,
    WorkerLoops,
    worker_id,
)
from notifier.outbox.sending import SendContext, send_claim
from notifier.outbox.settings import OutboxSettings
from notifier.outbox.store import MonitorViews, OutboxStore

__all__ = ["FunctionDeliverer", "OutboxDelivery", "attach"]


class OutboxDelivery(WorkerLoops, MonitorViews):
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
            folded into one digest message (see :mod:`notifier.outbox.policy`).
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
            digests = digest_thresholds(channels.values())
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
        self._start_loops()
        # Channels whose claims this engine is running, for concurrent submit() calls.
        self._busy: collections.Counter[str] = collections.Counter()
        self._ended = 0  # claims run to their end, for submit() to notice one just ended
        self._running = threading.Condition()
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
            pool=ChannelPools(concurrency or {}),
        )

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

    def close(self) -> None:
        """Stop claims between deliveries, shut our runner down, close the store."""
        self._stop.set()
        if self._background is not None:
            self._background.join()
        if self._own_runner:
            self.runner.shutdown(wait=True)
        self._send.pool.shutdown()
        self.store.close()

    def __enter__(self) -> OutboxDelivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
