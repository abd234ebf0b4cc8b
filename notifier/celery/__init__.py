"""Deliveries on Celery workers, with the state they share kept in Redis (``[celery]``).

With ``[celery]`` in the configuration, ``Dispatcher.dispatch`` (and ``notifier send`` and
``notifier serve``) enqueue one task per delivery, and workers on any number of machines
(``notifier worker``, or ``celery -A notifier.celery worker``) deliver them. What must
hold across all of them (rate limits, dedup and resolve-once, circuit breakers, per-alert
order, provider tokens, dead letters) lives in Redis, changed by atomic Lua scripts.
docs/scale-out.md is the guide.

``app`` is the Celery application configured from ``$NOTIFIER_CONFIG``, made on first use
so that importing this package needs no configuration.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from notifier.celery.application import default_app

        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
