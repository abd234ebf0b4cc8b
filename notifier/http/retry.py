"""When and how long to wait before trying a request again.

The client runs its own retry loop (urllib3's is off) so that every attempt is counted
for receipts and reported as an event. This module holds the policy; the decision table
is in :func:`may_retry`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from email.utils import parsedate_to_datetime

import attrs
import requests

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import NotifierError, RateLimited, TokenInvalid, TransportError


@attrs.frozen
class RetryPolicy:
    """Bounded exponential backoff with full jitter.

    :param max_attempts: requests per call at most, the first included (a token refresh
        after an invalid-token answer adds one on top).
    :param backoff: the first wait in seconds; it doubles per failure up to ``backoff_max``.
    :param jitter: wait a uniformly random time between 0 and the backoff ("full
        jitter"), so many clients failing together do not retry in lockstep.
    :param max_wait: a wait the server asks for (``Retry-After``) longer than this is
        not slept through: the error is raised with its ``retry_after`` so the outbox
        schedules the retry instead of a worker thread blocking for minutes.
    """

    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    backoff: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    jitter: bool = True
    max_wait: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))

    def backoff_delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        ceiling: float = min(self.backoff_max, self.backoff * 2 ** max(failures - 1, 0))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0, ceiling)

    def wait_for(
        self, error: NotifierError, failures: int, rng: random.Random | None = None
    ) -> float:
        """The wait before the next attempt: the server's ``retry_after`` wins over backoff."""
        asked = error.retry_after
        return float(asked) if asked is not None else self.backoff_delay(failures, rng)


def may_retry(error: NotifierError, *, replay_safe: bool) -> bool:
    """Whether the client may send the same request again within this call.

    :param replay_safe: the endpoint is idempotent, or the provider deduplicates this
        call by an idempotency key, so a second copy reaching the server does no harm.

    * the request provably never reached the server (connect refused or timed out):
      always, if the failure is transient;
    * the provider refused it for now (rate limited) or said the token is invalid: always,
      because it did not act on it (token refresh is handled separately, once);
    * anything else transient (5xx, "busy" codes, a dropped connection or read timeout
      after sending): only when ``replay_safe``, since the server may have acted on it.
    """
    if not error.retryable:
        return False
    if isinstance(error, RateLimited | TokenInvalid):
        return True
    if isinstance(error, TransportError) and not error.sent:
        return True
    return replay_safe


# The clock an answer's HTTP dates are read against: the client reading the answer sets
# its own while its parser runs, so a parser needs no clock argument.
_ANSWER_CLOCK: ContextVar[Clock] = ContextVar("notifier_answer_clock", default=SYSTEM_CLOCK)


@contextmanager
def answers_read_with(clock: Clock) -> Iterator[Clock]:
    """Within the block, :func:`retry_after_of` reads HTTP dates against ``clock``.

    :class:`~notifier.http.HttpClient` runs every parser inside this with its own clock;
    outside a client (a parser called directly) the system clock is used.
    """
    token = _ANSWER_CLOCK.set(clock)
    try:
        yield clock
    finally:
        _ANSWER_CLOCK.reset(token)


def retry_after_of(response: requests.Response, clock: Clock | None = None) -> float | None:
    """The seconds ``response``'s ``Retry-After`` header asks for (see
    :func:`parse_retry_after`), dates read against ``clock``; by default against the clock
    of the client reading the answer (:func:`answers_read_with`)."""
    return parse_retry_after(response.headers.get("Retry-After"), clock or _ANSWER_CLOCK.get())


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """``Retry-After`` in seconds from its delta-seconds or HTTP-date form; ``None`` if
    absent or unreadable. A date in the past means "now" (0)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - clock.time(), 0.0)
