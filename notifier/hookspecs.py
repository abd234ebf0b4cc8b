"""Every hook notifier calls, in one place.

Plugins implement these with the ``notifier.hookimpl`` marker and register through the
``notifier`` entry-point group. Three groups:

* **discovery**: contribute channel kinds;
* **channel operations**: send, create / get / update a group. The dispatcher calls these
  once per channel, never as one fan-out, so a channel that raises or hangs cannot stop
  another channel's delivery. Each is a first-result hook: the plugin that built the
  channel object answers, every other plugin returns ``None``;
* **observation**: per-request and per-delivery events, for metrics and audit logs.
  Their return values are ignored, and an exception raised in one is logged, not raised.

The reference with examples is ``docs/hooks.md``; a test fails when a hook here is missing
from it or has no test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from notifier.http.events import RequestEvent
    from notifier.kinds import ChannelKind
    from notifier.models import (
        Alert,
        DeliveryContext,
        GroupInfo,
        GroupSpec,
        GroupUpdate,
        Receipt,
        SendResult,
    )

hookspec = pluggy.HookspecMarker("notifier")


# --------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------


@hookspec
def notifier_channel_kinds() -> list[ChannelKind]:
    """Contribute channel kinds.

    Called once when the plugin manager is built. Two plugins returning a kind of the same
    name is an error naming both distributions.

    :return: a list of :class:`notifier.kinds.ChannelKind` records.
    """


# --------------------------------------------------------------------------------------
# Channel operations
# --------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def notifier_send(channel: Any, alert: Alert, delivery: DeliveryContext) -> SendResult | None:
    """Deliver one alert through one channel.

    Return ``None`` unless ``channel`` is an object your kind's ``build`` made. Raise a
    :class:`notifier.errors.NotifierError` subclass on failure, with ``retryable`` set so
    the outbox can decide between retrying later and dead-lettering.

    Stops at first non-None result.

    :param channel: the object a kind's ``build`` returned.
    :param alert: the alert to deliver.
    :param delivery: idempotency key, attempt number, route mentions and time budget.
    :return: a :class:`notifier.models.SendResult` with the provider's message id.
    """


@hookspec(firstresult=True)
def notifier_create_group(channel: Any, group: GroupSpec) -> GroupInfo | None:
    """Create a group chat that ``channel`` can later send to.

    Return ``None`` unless ``channel`` is yours; a channel whose kind cannot create groups
    gets a clear :class:`notifier.errors.UnsupportedOperation` from the host.

    Stops at first non-None result.

    :param channel: the object a kind's ``build`` returned.
    :param group: name, owner, members and optional chat id.
    :return: a :class:`notifier.models.GroupInfo` with the new chat id.
    """


@hookspec(firstresult=True)
def notifier_get_group(channel: Any, chat_id: str) -> GroupInfo | None:
    """Read a group chat's name, owner and members.

    Stops at first non-None result.

    :param channel: the object a kind's ``build`` returned.
    :param chat_id: the group's id.
    :return: a :class:`notifier.models.GroupInfo`.
    """


@hookspec(firstresult=True)
def notifier_update_group(channel: Any, chat_id: str, update: GroupUpdate) -> GroupInfo | None:
    """Rename a group chat, change its owner, add or remove members.

    Stops at first non-None result.

    :param channel: the object a kind's ``build`` returned.
    :param chat_id: the group's id.
    :param update: the changes; ``None`` fields stay as they are.
    :return: a :class:`notifier.models.GroupInfo` (``members`` may be empty when the
        provider does not echo them).
    """


# --------------------------------------------------------------------------------------
# Observation
# --------------------------------------------------------------------------------------


@hookspec
def notifier_http_request(event: RequestEvent) -> None:
    """Observe one HTTP request made through the shared HTTP layer.

    Called after every attempt, retries included, with the endpoint name, method, a
    redacted URL, status, provider error code, duration and outcome. Keep it fast: it
    runs on the delivering thread.

    :param event: a :class:`notifier.http.events.RequestEvent`.
    """


@hookspec
def notifier_delivery_finished(alert: Alert, receipt: Receipt) -> None:
    """Observe the end of one delivery attempt (delivered, failed, queued or deduplicated).

    :param alert: the alert.
    :param receipt: the receipt the caller gets, secrets already redacted.
    """
