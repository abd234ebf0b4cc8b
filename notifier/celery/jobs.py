"""One delivery as a Celery task carries it, and how the dispatcher enqueues them.

A task's only argument is a :class:`Job` as JSON: the alert, the channel, the route's
mentions, the delivery's idempotency key (:func:`notifier.models.delivery_key`), its
place in the alert's order, and the attempt it is on. Every retry is a new task with the
same key and place, sent with a ``countdown``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from notifier.celery.settings import CelerySettings, redacted_url
from notifier.celery.state import SharedState
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import NotifierError, QueueUnavailable
from notifier.groups import AlertGroup
from notifier.identity import channel_identity
from notifier.models import Alert, Outcome, Receipt, delivery_key

if TYPE_CHECKING:
    from celery import Celery

    from notifier.kinds import ChannelSpec
    from notifier.routing import Target

log = logging.getLogger(__name__)

#: The task's name, the same for every producer and worker.
TASK = "notifier.deliver"


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


@attrs.frozen
class Job:
    """One alert on one channel, as it travels to a worker."""

    alert: dict[str, Any]
    channel: str
    key: str
    seq: int
    identity: str
    written_at: float
    mentions: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    attempt: int = 1
    due: float = 0.0
    retrying: bool = False  # failed before: counted as in retry, not as queued
    group: dict[str, Any] | None = None  # the alerts a group's message stands for

    @property
    def fingerprint(self) -> str:
        return str(self.alert.get("fingerprint", ""))

    @property
    def status(self) -> str:
        return str(self.alert.get("status", "firing"))

    def to_payload(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["mentions"] = list(self.mentions)
        return data

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Job:
        known = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def make_job(
    alert: Alert,
    target: Target,
    spec: ChannelSpec,
    seq: int,
    now: float,
    group: AlertGroup | None = None,
) -> Job:
    return Job(
        alert=alert.to_dict(),
        channel=target.channel,
        key=delivery_key(alert, target.channel),
        seq=seq,
        identity=channel_identity(spec),
        written_at=now,
        mentions=target.mentions,
        group=None if group is None else group.to_dict(),
    )


def publish(app: Celery, settings: CelerySettings, job: Job, countdown: float = 0.0) -> str:
    """Send ``job`` to the queue; the task's id.

    :raises QueueUnavailable: the broker did not take it.
    """
    payload = job.to_payload()
    try:
        result = app.send_task(
            TASK,
            args=[payload],
            queue=settings.queue,
            countdown=countdown if countdown > 0 else None,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 1.0,
            },
        )
    except Exception as exc:  # kombu's and the transports' errors have no common base
        raise QueueUnavailable(
            f"the broker at {redacted_url(settings.broker)} did not take the task: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return str(result.id)


class CeleryDelivery:
    """The producer side: enqueues one task per delivery and answers ``queued``."""

    def __init__(
        self,
        settings: CelerySettings,
        state: SharedState,
        specs: Mapping[str, ChannelSpec],
        *,
        app: Celery | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.state = state
        self.specs = specs
        self.clock = clock
        self._app = app

    @property
    def app(self) -> Celery:
        if self._app is None:
            from notifier.celery.application import make_app

            self._app = make_app(self.settings)
        return self._app

    def submit(self, chosen: list[tuple[Alert, Target]]) -> list[Receipt]:
        """Enqueue every delivery; a ``queued`` receipt for each one the broker took,
        a ``failed`` one (retryable, saying why) for each it did not."""
        receipts = []
        for alert, target in chosen:
            try:
                task_id = self.enqueue(alert, target)
            except NotifierError as exc:
                receipts.append(
                    Receipt(
                        target.channel,
                        Outcome.FAILED,
                        error=f"not queued: {exc}",
                        fingerprint=alert.fingerprint,
                        kind=self.specs[target.channel].kind,
                        details={"retryable": True},
                    )
                )
                continue
            receipts.append(
                Receipt(
                    target.channel,
                    Outcome.QUEUED,
                    fingerprint=alert.fingerprint,
                    kind=self.specs[target.channel].kind,
                    details={"task_id": task_id, "queue": self.settings.queue},
                )
            )
        return receipts

    def enqueue(self, alert: Alert, target: Target, group: AlertGroup | None = None) -> str:
        """Place one delivery in its alert's order and send its task; the task id.

        :param group: the alerts ``alert`` stands for, when it is a group's message.
        """
        keep = self.settings.max_age + self.settings.backoff_max + 3600
        seq = self.state.enqueue(target.channel, alert.fingerprint, keep)
        spec = self.specs[target.channel]
        job = make_job(alert, target, spec, seq, self.clock.time(), group)
        try:
            self.state.keep(target.channel, alert.fingerprint, seq, job.to_payload())
            return publish(self.app, self.settings, job)
        except QueueUnavailable:
            try:  # so the alert's later deliveries need not wait for this one
                self.state.unqueue(target.channel, alert.fingerprint, seq)
            except QueueUnavailable:
                log.debug("could not take back delivery %d of %s", seq, target.channel)
            raise

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
        self.state.close()
