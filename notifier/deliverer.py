"""The deliverer: one attempt of one alert on one configured channel.

What runs deliveries later (the durable outbox, a task queue's worker) needs two things
of the configured channels, and only these: the facts that schedule them
(:class:`ChannelInfo`) and a single attempt (:meth:`Deliverer.attempt`). The
:class:`Deliverer` protocol is that seam; the dispatcher owns the implementation,
:class:`ChannelDeliverer`, over the channels it built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import attrs

from notifier.attempt import Attempt
from notifier.groups import AlertGroup
from notifier.identity import channel_identity
from notifier.kinds import RateLimit
from notifier.lanes import Lanes, LaneTask, LiveChannel
from notifier.models import Alert, DeliveryContext, Receipt
from notifier.pacing import Pacer, pace_within_deadline

# Binds what the stored alert lacks (the route's template, label mentions) to a context.
Bind = Callable[[str, Alert, DeliveryContext, AlertGroup | None], DeliveryContext]


@attrs.frozen
class ChannelInfo:
    """What a scheduler needs to know of one configured channel.

    :param identity: its name and settings, hashed (:mod:`notifier.identity`): a
        delivery written for it is delivered only where the channel is the same.
    :param rate_limit: its provider's limit, or ``None``.
    :param workers: deliveries of different alerts it may send at once.
    :param timeout: seconds one attempt may take (``delivery_timeout``).
    :param digest_threshold: waiting deliveries past which they are told in one digest
        message; 0 for never, ``None`` when the channel does not say (the outbox's
        default for its rate limit applies).
    """

    name: str
    identity: str
    rate_limit: RateLimit | None
    workers: int
    timeout: float
    digest_threshold: int | None


@runtime_checkable
class Deliverer(Protocol):
    """One attempt at a time, on the configured channels. Never raises for a channel's
    failure: every outcome is an :class:`~notifier.attempt.Attempt`."""

    @property
    def channels(self) -> Mapping[str, ChannelInfo]:
        """Every configured channel, by name."""
        ...

    def attempt(
        self,
        channel: str,
        alert: Alert,
        context: DeliveryContext,
        *,
        paced: bool = False,
        group: AlertGroup | None = None,
    ) -> Attempt:
        """Send ``alert`` on ``channel`` once, within its ``delivery_timeout``.

        Each send takes a slot of the channel's pacer (further parts of a split message
        through ``context.pace``).

        :param paced: the caller took the first send's slot already (the outbox takes
            it with its claim); take slots only for further parts.
        :param group: the alerts ``alert`` stands for, when it is a group's message: the
            channel's template sees them as ``group``.
        """
        ...

    def pace_with(self, pacers: Mapping[str, Pacer]) -> None:
        """From now on pace these channels with these pacers (the backend in force)."""
        ...


class ChannelDeliverer:
    """The :class:`Deliverer` over a dispatcher's built channels and lanes."""

    def __init__(
        self,
        lanes: Lanes,
        live: Mapping[str, LiveChannel],
        pacers: Mapping[str, Pacer],
        *,
        bind: Bind | None = None,
    ) -> None:
        """
        :param pacers: ``{channel: pacer}`` of the rate-limited channels.
        :param bind: completes a context for the alert (templates, label mentions).
        """
        self.lanes = lanes
        self.live = live
        self.pacers: dict[str, Pacer] = dict(pacers)
        self._bind = bind
        self._channels = {
            name: ChannelInfo(
                name=name,
                identity=channel_identity(ch.spec),
                rate_limit=ch.spec.rate_limit,
                workers=ch.workers,
                timeout=ch.spec.timeout,
                digest_threshold=ch.spec.digest_threshold,
            )
            for name, ch in live.items()
        }

    @property
    def channels(self) -> Mapping[str, ChannelInfo]:
        return self._channels

    def pace_with(self, pacers: Mapping[str, Pacer]) -> None:
        self.pacers.update(pacers)

    def pace(self, channel: str) -> Callable[[], float] | None:
        """A :attr:`DeliveryContext.pace` for ``channel``'s further parts, or ``None``."""
        pacer = self.pacers.get(channel)
        return pace_within_deadline(pacer) if pacer is not None else None

    def task(
        self,
        channel: str,
        alert: Alert,
        context: DeliveryContext,
        *,
        paced: bool = False,
        retried_by_caller: bool = True,
    ) -> LaneTask:
        """``alert`` on ``channel`` ready for its lane, with the channel's pacer."""
        return LaneTask(
            self.live[channel],
            alert,
            context,
            pacer=self.pacers.get(channel),
            paced=paced,
            retried_by_caller=retried_by_caller,
        )

    def attempt(
        self,
        channel: str,
        alert: Alert,
        context: DeliveryContext,
        *,
        paced: bool = False,
        group: AlertGroup | None = None,
    ) -> Attempt:
        live = self.live.get(channel)
        if live is None:
            return Attempt(
                channel,
                False,
                fingerprint=alert.fingerprint,
                error=f"channel {channel!r} is not in the configuration any more",
            )
        # Built, not evolved: this runs once per delivery and evolve costs several times more.
        context = DeliveryContext(
            idempotency_key=context.idempotency_key,
            attempt=context.attempt,
            mentions=context.mentions,
            timeout=live.spec.timeout,
            pace=self.pace(channel),
            template=context.template,
        )
        if self._bind is not None:
            context = self._bind(channel, alert, context, group)
        (attempt,) = self.lanes.run([self.task(channel, alert, context, paced=paced)])
        return attempt


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
        self,
        channel: str,
        alert: Alert,
        context: DeliveryContext,
        *,
        paced: bool = False,
        group: AlertGroup | None = None,
    ) -> Attempt:
        return Attempt.from_receipt(self.deliver(channel, alert, context))

    def pace_with(self, pacers: Mapping[str, object]) -> None:
        pass
