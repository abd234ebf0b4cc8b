"""The rules the outbox applies, as pure functions of stored state and the time.

* :class:`Backoff`: when to try a failed delivery again;
* :class:`CircuitBreaker`: when to stop trying a channel for a while, and when to probe it;
* :func:`is_duplicate`: whether an alert was already sent within the dedup window.

They hold no state of their own; the store keeps it, so every process sharing an outbox
file applies the same rules to the same facts.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping

import attrs

# Growth stops here: 2**64 seconds is far past any cap, and the float stays finite.
_MAX_EXPONENT = 64


@attrs.frozen
class Backoff:
    """Exponential backoff with jitter, capped.

    The n-th retry waits a random time between half and all of
    ``min(maximum, initial * multiplier ** (n - 1))``: jitter spreads retries from many
    deliveries apart, and keeping the lower half keeps the growth. A ``Retry-After`` from
    the provider wins over the computed delay.
    """

    initial: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    maximum: float = attrs.field(default=600.0, validator=attrs.validators.gt(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))

    def ceiling(self, attempt: int) -> float:
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        return min(self.maximum, self.initial * self.multiplier**exponent)

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        if retry_after is not None and retry_after >= 0:
            return float(retry_after)
        top = self.ceiling(attempt)
        return rng.uniform(top / 2, top)


class Circuit(enum.StrEnum):
    CLOSED = "closed"  # deliveries flow
    OPEN = "open"  # nothing is tried until open_until
    HALF_OPEN = "half_open"  # one probe is out; its result closes or reopens the circuit


@attrs.frozen
class CircuitState:
    circuit: Circuit = attrs.field(default=Circuit.CLOSED, converter=Circuit)
    failures: int = 0
    open_until: float = 0.0


@attrs.frozen
class CircuitBreaker:
    """Opens a channel's circuit after ``threshold`` retryable failures in a row.

    While open for ``cooldown`` seconds no delivery of the channel is tried and all stay
    queued. Then one delivery is let through as a probe: success closes the circuit,
    failure opens it for another cool-down. ``threshold = 0`` disables the breaker.
    """

    threshold: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    cooldown: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))

    def admits(self, state: CircuitState, now: float) -> int | None:
        """How many deliveries may be claimed now: ``None`` (no limit), 1 (probe) or 0."""
        if self.threshold == 0 or state.circuit is Circuit.CLOSED:
            return None
        if state.circuit is Circuit.OPEN and now < state.open_until:
            return 0
        # Open and cooled down, or half-open whose probe was lost with its worker.
        return 1

    def on_failure(self, state: CircuitState, now: float) -> CircuitState:
        failures = state.failures + 1
        if self.threshold and (state.circuit is not Circuit.CLOSED or failures >= self.threshold):
            return CircuitState(Circuit.OPEN, failures, now + self.cooldown)
        return CircuitState(state.circuit, failures, state.open_until)

    def on_success(self, state: CircuitState) -> CircuitState:
        return CircuitState()


FIRING, RESOLVED = "firing", "resolved"


def is_duplicate(status: str, sent: Mapping[str, float], now: float, window: float) -> bool:
    """Whether an alert with ``status`` need not be sent again on a channel.

    :param sent: when each status of this fingerprint was last sent on the channel.
    :param window: the dedup window in seconds; 0 turns deduplication off.

    A firing alert is a duplicate when it was sent as firing within the window and not
    resolved since. A resolved alert is sent once when it resolves: it is a duplicate
    when the last thing sent for the fingerprint was already its resolution.
    """
    if window <= 0:
        return False
    firing_at, resolved_at = sent.get(FIRING), sent.get(RESOLVED)
    if status == FIRING:
        return (
            firing_at is not None
            and now - firing_at < window
            and (resolved_at is None or resolved_at < firing_at)
        )
    return resolved_at is not None and (firing_at is None or resolved_at >= firing_at)
