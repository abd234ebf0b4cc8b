"""Joining the outbox to the configured channels.

The channels' side keeps what it knows (their rate limits and time budgets, one attempt
through a plugin) behind the :class:`~notifier.deliverer.Deliverer` protocol; the outbox
keeps what it knows (what is queued, when to try, in which order). :func:`attach`
connects the two.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.deliverer import Deliverer
from notifier.outbox.engine import OutboxDelivery
from notifier.outbox.runner import Runner
from notifier.outbox.settings import OutboxSettings

if TYPE_CHECKING:
    from notifier.config import Config


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
