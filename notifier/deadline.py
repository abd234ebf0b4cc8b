"""The running delivery's deadline, carried with the thread's context.

The dispatcher sets it before calling a channel's ``send`` hook (its ``delivery_timeout``
from the moment the delivery got its rate-limit slot); :class:`~notifier.http.HttpClient`
reads it to cap each attempt's connect and read timeouts by the time left and to give up
retrying once the next try would not fit. Code that blocks without the HTTP client (a
socket, an SMTP session) reads :func:`remaining` to bound its own waits.

It travels as a :class:`contextvars.ContextVar` rather than as an argument so every
call a plugin makes through the HTTP client honours it without the plugin passing it on.

A kind that declares :attr:`~notifier.kinds.ChannelKind.bounded` promises its sends end
by this deadline on their own; the dispatcher then runs a lone delivery on the calling
thread instead of handing it to the channel's lane and back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import overload

from notifier.errors import RateLimited

# A time.monotonic() value: real time, because socket timeouts run in real time.
_DEADLINE: ContextVar[float | None] = ContextVar("notifier_deadline", default=None)


def current() -> float | None:
    """The deadline (a ``time.monotonic()`` value), or ``None`` when there is none."""
    return _DEADLINE.get()


def remaining() -> float | None:
    """Seconds left before the deadline (negative once passed), ``None`` without one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


@contextmanager
def within(seconds: float) -> Iterator[float]:
    """Run the block with a deadline ``seconds`` from now (or the enclosing one, if
    sooner); yields the deadline."""
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


@overload
def cap(timeout: float) -> float: ...
@overload
def cap(timeout: tuple[float, float]) -> tuple[float, float]: ...
def cap(timeout: float | tuple[float, float]) -> float | tuple[float, float]:
    """``timeout`` (seconds, or ``(connect, read)``) shortened to the time left.

    A passed deadline gives a tiny positive timeout rather than an error, so the error
    that surfaces is the transport's own, naming the phase that ran out.
    """
    left = remaining()
    if left is None:
        return timeout
    left = max(left, 0.001)
    if isinstance(timeout, tuple):
        return (min(timeout[0], left), min(timeout[1], left))
    return min(timeout, left)


def check_wait(wait: float, what: str) -> None:
    """Refuse to wait ``wait`` seconds for a rate-limit slot past the deadline.

    :raises RateLimited: with ``retry_after`` set, so the delivery is retried later
        (the outbox pauses the channel until then) instead of overrunning its budget.
    """
    left = remaining()
    if left is not None and wait > 0 and wait > left:
        raise RateLimited(
            f"{what}: next slot in {wait:.1f}s, after the delivery_timeout",
            retry_after=wait,
            attempts=0,
        )
