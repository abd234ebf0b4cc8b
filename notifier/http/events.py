"""What the HTTP layer reports after every attempt.

One :class:`RequestEvent` per request on the wire (retries included), handed to the
client's ``observe`` callable; the host forwards it to the ``notifier_http_request`` hook,
so metrics and audit logs can be added without touching any channel.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from notifier.errors import NotifierError
from notifier.redact import redact

#: the request succeeded and its answer was accepted
OK = "ok"
#: the attempt failed and the client will try again
RETRY = "retry"
#: the attempt failed and the error is raised to the caller
ERROR = "error"


@attrs.frozen
class RequestEvent:
    """One attempt of one endpoint call. Every text field is already redacted.

    :param channel: the configured channel's name ("" for a client without one).
    :param endpoint: the :class:`~notifier.http.endpoint.Endpoint`'s name.
    :param url: the full URL with credentials masked.
    :param status: the HTTP status, ``None`` when no answer arrived.
    :param code: the provider's error code (``errcode``, gateway ``code``), when known.
    :param duration_ms: wall time of this attempt, token fetch included.
    :param attempt: 1 for the first request of a call, 2 for its first retry, ...
    :param outcome: ``"ok"``, ``"retry"`` or ``"error"``.
    :param error: the error's message when the attempt failed.
    """

    channel: str
    endpoint: str
    method: str
    url: str
    status: int | None
    code: int | str | None
    duration_ms: float
    attempt: int
    outcome: str = attrs.field(validator=attrs.validators.in_((OK, RETRY, ERROR)))
    error: str | None = None


def attempt_event(
    channel: str,
    endpoint: Any,
    url: str | None,
    status: int | None,
    error: BaseException | None,
    started: float,
    attempt: int,
    outcome: str,
) -> RequestEvent:
    """The event for one attempt that began at ``started`` (``time.perf_counter()``)."""
    return RequestEvent(
        channel=channel,
        endpoint=endpoint.name,
        method=endpoint.method,
        url=redact(url or ""),
        status=status,
        code=error.code if isinstance(error, NotifierError) else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        attempt=attempt,
        outcome=outcome,
        error=redact(str(error)) if error is not None else None,
    )


def describe_event(event: RequestEvent) -> str:
    """One log line for ``event``."""
    status = event.status if event.status is not None else "no answer"
    code = f" code {event.code}" if event.code is not None else ""
    error = f": {event.error}" if event.error else ""
    return (
        f"{event.channel or '-'} {event.method} {event.url} -> {status}{code} in "
        f"{event.duration_ms:.1f} ms (attempt {event.attempt}, {event.outcome}){error}"
    )
