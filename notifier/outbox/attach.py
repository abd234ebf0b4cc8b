"""Joining the outbox to the dispatcher.

The dispatcher keeps what it knows (channels, their rate limits and time budgets, one
attempt through a plugin); the outbox keeps what it knows (what is queued, when to try,
in which order). :func:`attach` connects the two through one function,
``Dispatcher.deliver``, wrapped so each outbox attempt runs with its channel's time
budget and paces every part of a split message against the shared send log.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from notifier import deadline
from notifier.models import Alert, DeliveryContext, Outcome, Receipt
from notifier.outbox.digest import default_threshold
from notifier.outbox.engine import OutboxDelivery
from notifier.outbox.identity import identities
from notifier.outbox.runner import Runner
from notifier.outbox.settings import OutboxSettings

if TYPE_CHECKING:
    from notifier.config import Config
    from notifier.dispatcher import Dispatcher
    from notifier.kinds import RateLimit


def settings_from_config(
    config: Config, override: OutboxSettings | bool | None = None
) -> OutboxSettings | None:
    """The outbox settings to use, or ``None`` to deliver directly.

    :param override: ``False`` turns the outbox off, an :class:`OutboxSettings` replaces
        the file's; ``None`` (and ``True``) follow the file: an ``[outbox]`` table, even
        an empty one, turns the outbox on unless it says ``enabled = false``.
    :raises ConfigError: the ``[outbox]`` table has unknown keys or bad values.
    """
    if override is False:
        return None
    if isinstance(override, OutboxSettings):
        return override if override.enabled else None
    table = config.outbox
    if table is None and override is None:
        return None
    settings = OutboxSettings.from_table(table, file=config.file)
    return settings if settings.enabled else None


def attach(
    dispatcher: Dispatcher, settings: OutboxSettings, *, runner: Runner | None = None
) -> OutboxDelivery:
    """An outbox engine that delivers through ``dispatcher``."""
    channels = dispatcher.channels
    limits: dict[str, RateLimit] = {
        name: live.spec.rate_limit for name, live in channels.items() if live.spec.rate_limit
    }

    def deliver(channel: str, alert: Alert, context: DeliveryContext) -> Receipt:
        live = channels.get(channel)
        if live is None:
            return Receipt(
                channel,
                Outcome.FAILED,
                error=f"channel {channel!r} is not in the configuration any more",
                fingerprint=alert.fingerprint,
                details={"retryable": False},
            )
        limit = limits.get(channel)
        pace = None if limit is None else lambda: _pace(engine, channel, limit, live.pacer)
        # Built, not evolved: this runs once per delivery and evolve costs several times more.
        context = DeliveryContext(
            idempotency_key=context.idempotency_key,
            attempt=context.attempt,
            mentions=context.mentions,
            timeout=live.spec.timeout,
            pace=pace,
        )
        return dispatcher.deliver(channel, alert, context, retried_by_caller=True)

    digests = {}
    for name, live in channels.items():
        threshold = live.spec.digest_threshold
        if threshold is None:
            threshold = default_threshold(live.spec.rate_limit)
        if threshold:
            digests[name] = threshold
    engine = OutboxDelivery.open(
        settings,
        deliver,
        rate_limits=limits,
        clock=dispatcher.clock,
        runner=runner,
        concurrency={name: live.workers for name, live in channels.items()},
        digests=digests,
        identities=identities({name: live.spec for name, live in channels.items()}),
        origin=_origin(dispatcher.config.file),
    )
    return engine


def _pace(engine: OutboxDelivery, channel: str, limit: RateLimit, pacer: Any) -> float:
    """Take one more send slot for a further part of a split message; seconds waited."""
    waited = 0.0
    while (wait := engine.store.take_slot(channel, engine.clock.time(), limit)) > 0:
        deadline.check_wait(wait, f"channel {channel!r} rate limit")
        engine.clock.sleep(wait)
        waited += wait
    if pacer is not None:  # keep this process's own limiter in step
        waited += pacer.acquire()
    return waited


def _origin(file: str) -> str:
    """The configuration file as stamped on deliveries: absolute, or as given when it
    names no file (``<inline>``)."""
    return os.path.abspath(file) if file and not file.startswith("<") else file
