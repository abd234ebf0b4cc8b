"""The dispatcher: the public API. Builds the configured channels, routes each alert
and delivers it to every chosen channel at once, on the channels' lanes
(:mod:`notifier.lanes`), or through the durable outbox when ``[outbox]`` is configured,
or enqueues one Celery task per delivery when ``[celery]`` is (:mod:`notifier.celery`).

The dispatcher fans out over channels itself rather than through one 1:N hook call,
because pluggy stops at the first exception.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.config import Config, load_config
from notifier.deliverer import ChannelDeliverer
from notifier.errors import (
    ConfigError,
    ConfigIssue,
    OutboxWriteError,
    UnsupportedOperation,
)
from notifier.groups import AlertGroup
from notifier.kinds import BuildContext, Part
from notifier.lanes import Lanes, LiveChannel
from notifier.mentions import label_mentions, merge
from notifier.models import (
    Alert,
    DeliveryContext,
    GroupInfo,
    GroupSpec,
    GroupUpdate,
    Receipt,
    delivery_key,
)
from notifier.pacing import Pacer
from notifier.plugins import PluginHost
from notifier.ratelimit import SlidingWindow
from notifier.redact import install_log_redaction, scrub_exception
from notifier.routing import Target, resolve
from notifier.templates import Rendering, template_format

if TYPE_CHECKING:
    from notifier.celery.jobs import CeleryDelivery
    from notifier.celery.settings import CelerySettings
    from notifier.celery.state import SharedState
    from notifier.outbox import OutboxDelivery, OutboxSettings

log = logging.getLogger(__name__)


class Dispatcher:
    """Routes alerts and delivers them through configured channels.

    Use as a context manager, or call :meth:`close`, to release worker threads, HTTP
    sessions and connections.

    Its :attr:`deliverer` (a :class:`~notifier.deliverer.Deliverer`) makes single
    attempts on the built channels, for the outbox and other schedulers.
    """

    def __init__(
        self,
        config: Config,
        *,
        host: PluginHost | None = None,
        clock: Clock = SYSTEM_CLOCK,
        outbox: OutboxSettings | bool | None = None,
        pacers: Mapping[str, Pacer] | None = None,
        celery: CelerySettings | bool | None = None,
    ) -> None:
        """
        :param pacers: ``{channel: pacer}`` replacing the in-memory
            :class:`~notifier.ratelimit.SlidingWindow` of these channels when delivering
            directly (with the outbox, its shared send log paces every channel).
        """
        self.config = config
        self.host = host or PluginHost.load()
        install_log_redaction()  # also on the loggers of the plugins just loaded
        self.clock = clock
        self._lanes = Lanes(self.host)
        self.celery: CeleryDelivery | None = None
        scale = self._shared_state(celery)
        shared = scale[1] if scale else None
        workers = config.dispatcher.workers
        observe = self.host.http_request if self.host.observes_http else None
        tokens = None
        if shared is not None:
            from notifier.celery.tokens import RedisTokenStore

            tokens = RedisTokenStore(shared.client, shared.prefix, clock=clock, url=shared.url)
        context = BuildContext(clock=clock, pool_size=workers, observe=observe, tokens=tokens)
        self.channels: dict[str, LiveChannel] = {}
        chosen_pacers: dict[str, Pacer] = {}
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
            if pacers is not None and name in pacers:
                chosen_pacers[name] = pacers[name]
            elif spec.rate_limit:
                chosen_pacers[name] = SlidingWindow(spec.rate_limit, clock)
            lane = ThreadPoolExecutor(workers, thread_name_prefix=f"notifier-{name}")
            kind = self.host.kinds[spec.kind]
            self.channels[name] = LiveChannel(spec, kind, built, lane, workers)
        self._closed = False
        # Without templates or label mentions a delivery's context needs nothing more.
        self._templating = any(r.template or r.mention_labels for r in config.routes) or any(
            spec.template or spec.mention_labels for spec in config.channels.values()
        )
        self.deliverer = ChannelDeliverer(
            self._lanes,
            self.channels,
            chosen_pacers,
            bind=self._bind if self._templating else None,
        )
        self.outbox: OutboxDelivery | None = None
        if issues:
            if shared is not None:
                shared.close()
            self.close()
            raise ConfigError(issues)
        if scale is not None:
            from notifier.celery.jobs import CeleryDelivery

            settings, shared = scale
            specs = {name: live.spec for name, live in self.channels.items()}
            self.celery = CeleryDelivery(settings, shared, specs, clock=clock)
        elif config.outbox is not None or outbox:
            self._open_outbox(outbox)

    def _shared_state(
        self, override: CelerySettings | bool | None
    ) -> tuple[CelerySettings, SharedState] | None:
        """The Redis state of ``[celery]`` (or of ``override``), when deliveries go to
        Celery workers (docs/scale-out.md); connects lazily, so no server need answer yet."""
        if override is False:
            return None
        settings = override if not isinstance(override, bool) else None
        settings = settings or self.config.celery
        if settings is None:
            return None
        from notifier.celery.state import SharedState

        return settings, SharedState.for_settings(settings)

    def _open_outbox(self, override: OutboxSettings | bool | None) -> None:
        """Write every delivery to the durable outbox first (``[outbox]``, docs/outbox.md)."""
        from notifier.outbox.engine import attach
        from notifier.outbox.settings import settings_from_config

        try:
            settings = settings_from_config(self.config, override)
            if settings:
                self.outbox = attach(
                    self.deliverer, settings, clock=self.clock, config_file=self.config.file
                )
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
        plugins: Iterable[object] = (),
        pacers: Mapping[str, Pacer] | None = None,
        celery: CelerySettings | bool | None = None,
    ) -> Self:
        """Load plugins and the config file (``path`` or ``$NOTIFIER_CONFIG``), build
        every channel. Raises :class:`ConfigError` listing every problem.

        :param plugins: the application's own plugins (modules or objects with
            ``@hookimpl`` methods), registered after the installed ones, without an
            entry point. Not together with ``host``: register them on it instead.
        """
        plugins = list(plugins)
        if host is not None and plugins:
            raise TypeError("give plugins= or host=, not both (PluginHost.load(extra=...))")
        host = host or PluginHost.load(env=env, extra=plugins)
        config = load_config(path, host, env)
        clock = clock or SYSTEM_CLOCK
        return cls(config, host=host, clock=clock, outbox=outbox, pacers=pacers, celery=celery)

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
        cannot be finished now stays queued (receipt outcome ``queued``). With
        ``[celery]``, every delivery is a task for the workers (``queued``), or, when the
        broker or Redis cannot be reached, ``failed`` saying so.
        """
        chosen = [(alert, t) for alert in alerts for t in self.targets(alert)]
        if self.celery is not None:
            return self.celery.submit(chosen)
        if self.outbox is not None:
            from notifier.outbox import NewDelivery

            try:
                return self.outbox.submit(NewDelivery(a, t.channel, t.mentions) for a, t in chosen)
            except OutboxWriteError as exc:
                return self._dispatch_undurable(chosen, exc)
        return self._direct(chosen)

    def _direct(self, chosen: list[tuple[Alert, Target]]) -> list[Receipt]:
        task = self.deliverer.task
        attempts = self._lanes.run(
            [task(t.channel, a, self._context(a, t), retried_by_caller=False) for a, t in chosen]
        )
        return [attempt.receipt(retried=False) for attempt in attempts]

    def _dispatch_undurable(
        self, chosen: list[tuple[Alert, Target]], exc: OutboxWriteError
    ) -> list[Receipt]:
        """Attempt deliveries the outbox could not take, once and directly: an alert is
        better sent without the outbox's retries than not at all."""
        log.warning(
            "%s; %d delivery(ies) attempted directly, without the outbox: not durable, not retried",
            exc,
            len(chosen),
        )
        receipts = self._direct(chosen)
        return [undurable(r, str(exc)) for r in receipts]

    def deliver(
        self,
        channel: str,
        alert: Alert,
        delivery: DeliveryContext | None = None,
        *,
        retried_by_caller: bool = False,
    ) -> Receipt:
        """One paced, isolated attempt within the channel's ``delivery_timeout``; never
        raises. Runs on the channel's lane, so a hung plugin costs a lane thread, not the
        caller, unless the channel's kind declares its sends bounded by the deadline
        (then it runs here). Schedulers use :attr:`deliverer` instead, whose attempts
        are values rather than receipts.

        :param retried_by_caller: the caller records the outcome and retries a retryable
            failure (as the outbox does): the attempt is logged at DEBUG only, and a
            failure's error does not say that nothing retries it.
        """
        if delivery is None:
            delivery = self._context(alert, self._target(channel, alert))
        else:
            delivery = self._bind(channel, alert, delivery)
        task = self.deliverer.task(channel, alert, delivery, retried_by_caller=retried_by_caller)
        (attempt,) = self._lanes.run([task])
        return attempt.receipt(retried=retried_by_caller)

    def _bind(
        self,
        channel: str,
        alert: Alert,
        delivery: DeliveryContext,
        group: AlertGroup | None = None,
    ) -> DeliveryContext:
        """``delivery`` with the route's template and label mentions, when it came
        without them (from a scheduler, which stores the alert, not the route); a
        group's message is rendered with its group."""
        if self._templating and delivery.template is None:
            return self._templated(alert, self._target(channel, alert), delivery, group)
        return delivery

    def _context(
        self, alert: Alert, target: Target, group: AlertGroup | None = None
    ) -> DeliveryContext:
        live = self.channels[target.channel]
        context = DeliveryContext(
            idempotency_key=delivery_key(alert, target.channel),
            mentions=target.mentions,
            timeout=live.spec.timeout,
            pace=self.deliverer.pace(target.channel),
        )
        if not self._templating:
            return context
        return self._templated(alert, target, context, group)

    def _target(self, channel: str, alert: Alert) -> Target:
        """The route target that sends ``alert`` to ``channel`` (a bare one if none does)."""
        for target in self.targets(alert):
            if target.channel == channel:
                return target
        return Target(channel)

    def _templated(
        self,
        alert: Alert,
        target: Target,
        context: DeliveryContext,
        group: AlertGroup | None = None,
    ) -> DeliveryContext:
        """``context`` with the channel's ``mention_labels`` and the route's (else the
        channel's) template bound to it."""
        live = self.channels[target.channel]
        spec = live.spec
        alerts = group.alerts if group is not None else (alert,)
        labelled = [label_mentions(a.labels, spec.mention_labels) for a in alerts]
        mentions = merge(context.mentions, *labelled)
        template = target.template or spec.template
        rendering = None
        if template is not None:
            fmt = template_format(live.kind)
            escaper = live.kind.template_escape
            escape = escaper(spec) if escaper is not None else None
            rendering = Rendering(template, self.config.render, spec.name, fmt, group, escape)
        if mentions == context.mentions and rendering is None:
            return context
        return attrs.evolve(context, mentions=mentions, template=rendering)

    def preview(self, channel: str, alert: Alert | AlertGroup) -> list[Part]:
        """Exactly the messages ``channel`` would send for ``alert``, sending nothing, or
        for a group (an Alertmanager notification) what ``notifier serve`` sends: the
        group's message, or several cut at alert boundaries over the provider's limit
        (:mod:`notifier.messages`). ``notifier render`` prints them.

        :raises UnsupportedOperation: no such channel, or its kind cannot preview.
        :raises TemplateError: the template failed for this alert.
        """
        live = self.channels.get(channel)
        if live is None:
            known = ", ".join(sorted(self.channels)) or "none"
            raise UnsupportedOperation(f"no channel named {channel!r} (configured: {known})")
        if live.kind.preview is None:
            raise UnsupportedOperation(
                f"channel {channel!r} is of kind {live.spec.kind!r}, which cannot show its "
                "messages before sending"
            )
        if not isinstance(alert, AlertGroup):
            context = self._context(alert, self._target(channel, alert), None)
            return live.kind.preview(live.channel, alert, context)
        from notifier.messages import Budgets, messages

        group = alert
        # Every alert's route mentions, as serve merges them for the channel.
        routed = merge(
            (), *(t.mentions for a in group.alerts for t in self.targets(a) if t.channel == channel)
        )
        parts: list[Part] = []
        for message, told in messages(group, group.alerts, Budgets(self)(channel)):
            target = attrs.evolve(self._target(channel, message), mentions=routed)
            context = self._context(message, target, told)
            parts += live.kind.preview(live.channel, message, context)
        return parts

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
        # Also called on a dispatcher whose __init__ stopped early.
        outbox: OutboxDelivery | None = getattr(self, "outbox", None)
        if outbox is not None:
            outbox.close()  # lets lanes finish the delivery in hand
        celery: CeleryDelivery | None = getattr(self, "celery", None)
        if celery is not None:
            celery.close()
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


def undurable(receipt: Receipt, why: str) -> Receipt:
    """``receipt`` of a direct attempt, marked as not written to the outbox."""
    details = {**receipt.details, "durable": False, "outbox_error": why}
    error = receipt.error
    if error is not None:
        error = f"{error} (not queued in the outbox, so not retried: {why})"
    return attrs.evolve(receipt, details=details, error=error)
