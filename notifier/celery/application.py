"""The Celery application: made from ``[celery]`` settings, with the one delivery task.

Tasks are acknowledged after the delivery (``acks_late``), and one whose worker dies is
given back to the queue (``reject_on_worker_lost``); a Redis broker hands a lost worker's
unacknowledged tasks to another after ``visibility_timeout`` seconds. Workers take one
task at a time per slot (prefetch 1), so a killed worker takes no more than it was running
down with it. docs/scale-out.md explains the settings.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery
from celery.exceptions import Reject

from notifier.celery.jobs import TASK
from notifier.celery.runtime import Runtime
from notifier.celery.settings import CelerySettings
from notifier.errors import ConfigError, ConfigIssue, QueueUnavailable

log = logging.getLogger(__name__)

# Seconds the restore lock of a worker that died holding it keeps the others from
# restoring lost tasks.
RESTORE_LOCK = 10


def make_app(settings: CelerySettings, *, config: str | None = None) -> Celery:
    """A Celery application for ``settings``; its workers deliver with the dispatcher of
    the configuration file ``config`` (default ``$NOTIFIER_CONFIG``)."""
    app = Celery("notifier", set_as_current=False)
    restore = min(max(settings.visibility_timeout / 4, 0.5), 10.0)
    app.conf.update(
        broker_url=settings.broker,
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=settings.connect_timeout,
        broker_heartbeat=0 if settings.redis_broker else 60,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": restore,
            "unacked_restore_throttle": 1,
            # The lock one worker holds while it gives lost tasks back. A worker killed
            # (or a Redis stopped) while holding it would otherwise leave it for kombu's
            # default 5 minutes, and no worker would give back anything until then.
            "unacked_mutex_expire": RESTORE_LOCK,
            "socket_connect_timeout": settings.connect_timeout,
        },
        notifier_config=config,
    )

    @app.task(  # type: ignore[untyped-decorator]
        name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
    )
    def deliver(task: Any, payload: dict[str, Any]) -> str:
        try:
            return runtime(app).run(payload, str(task.request.id))
        except QueueUnavailable as exc:
            # Away for longer than the runtime waits with the task in hand: not
            # acknowledged, the task goes back to the queue, or, when the broker is the
            # Redis that is away, stays with it and is handed out again once it is back.
            log.warning("%s; the delivery goes back to the queue", exc)
            raise Reject(str(exc), requeue=True) from exc

    return app


_runtimes: dict[int, Runtime] = {}
_lock = threading.Lock()


def runtime(app: Celery) -> Runtime:
    """This process's :class:`Runtime` for ``app``, made on first use."""
    found = _runtimes.get(id(app))
    if found is not None:
        return found
    with _lock:
        found = _runtimes.get(id(app))
        if found is None:
            from notifier.dispatcher import Dispatcher

            dispatcher = Dispatcher.from_config(app.conf.get("notifier_config"))
            if dispatcher.celery is None:
                dispatcher.close()
                raise _no_table(dispatcher.config.file)
            found = _runtimes[id(app)] = Runtime(dispatcher, app)
            # Each worker process sweeps for lost tasks; the sweep hands each lost one to
            # one sweeper alone.
            threading.Thread(
                target=found.sweep_forever,
                args=(threading.Event(),),
                name="notifier-sweep",
                daemon=True,
            ).start()
        return found


def _no_table(file: str) -> ConfigError:
    return ConfigError(
        [ConfigIssue(file, "celery", "a [celery] table with a broker (docs/scale-out.md)")]
    )


_default: Celery | None = None


def default_app() -> Celery:
    """The application of ``$NOTIFIER_CONFIG`` (``celery -A notifier.celery worker``)."""
    global _default
    if _default is None:
        from notifier.config import load_config
        from notifier.plugins import PluginHost

        config = load_config(None, PluginHost.load())
        if config.celery is None:
            raise _no_table(config.file)
        _default = make_app(config.celery, config=os.path.abspath(config.file))
    return _default
