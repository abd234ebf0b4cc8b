"""The rules the outbox applies, as pure functions of stored state and the time.

* :class:`Backoff`: when to try a failed delivery again;
* :class:`CircuitBreaker`: when to stop trying a channel for a while, and when to probe it;
* :func:`is_duplicate`: whether an alert was already sent within the dedup window;
* digests (:func:`build_digest`, :func:`digest_thresholds`): many waiting deliveries of
  one channel told in one message.

They hold no state of their own; the store keeps it, so every process sharing an outbox
file applies the same rules to the same facts.
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from notifier.kinds import RateLimit
from notifier.models import SEVERITIES, Alert, Status

if TYPE_CHECKING:
    from notifier.deliverer import ChannelInfo

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


# -- digests ----------------------------------------------------------------------------
# A channel whose rate limit holds a backlog (a robot allowed 20 messages a minute facing
# an alert storm of 300) would take a quarter of an hour to tell its people one message
# at a time. Past the channel's ``digest_threshold`` of waiting deliveries, the outbox
# claims all of them and sends one digest instead: how many are firing and resolved, then
# the alerts most severe first, then "and N more". The folded deliveries are recorded as
# delivered by that digest.

# A digest's text stays well inside every shipped provider's message limit (WeCom and
# DingTalk robots take 4,096 bytes of markdown, Feishu and Slack more), so it is sent as
# one message, using one send slot.
DIGEST_BYTES = 1_500
DIGEST_LINE = 120  # characters of one alert's line
# Per-minute limits fold a backlog of half the window's messages.
PER_MINUTE = 60.0


def default_threshold(limit: RateLimit | None) -> int:
    """The digest threshold of a channel that does not set one: on for kinds limited
    per minute or slower (half their window's messages, at least 2), off otherwise."""
    if limit is None or limit.per < PER_MINUTE:
        return 0
    return max(2, limit.count // 2)


def _line(alert: Alert) -> str:
    title = " ".join(alert.title.split())
    text = f"[{alert.severity}] {alert.status.value}: {title}"
    return text if len(text) <= DIGEST_LINE else text[: DIGEST_LINE - 1] + "…"


def build_digest(channel: str, alerts: Sequence[Alert]) -> Alert:
    """One alert telling ``alerts`` (in the order written; a later status of the same
    fingerprint replaces an earlier one, so a resolution follows its firing)."""
    latest: dict[str, Alert] = {}
    for alert in alerts:
        latest.pop(alert.fingerprint, None)  # re-inserted: keeps the order of the last
        latest[alert.fingerprint] = alert
    told = list(latest.values())
    firing = [a for a in told if a.status is Status.FIRING]
    resolved = len(told) - len(firing)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    # Firing before resolved, most severe first; the order written breaks ties.
    ordered = sorted(
        enumerate(told), key=lambda p: (p[1].status is not Status.FIRING, rank[p[1].severity], p[0])
    )
    lines: list[str] = []
    used = 0
    for n, (_, alert) in enumerate(ordered):
        line = _line(alert)
        size = len(line.encode()) + 1
        rest = len(ordered) - n
        # Room is kept for the "and N more" line whenever alerts are left after this one.
        reserve = 0 if rest == 1 else len(f"and {rest} more".encode()) + 1
        if used + size + reserve > DIGEST_BYTES:
            lines.append(f"and {rest} more")
            break
        lines.append(line)
        used += size
    key = hashlib.sha256("\n".join(sorted(latest)).encode()).hexdigest()[:16]
    severity = min((a.severity for a in firing), key=rank.__getitem__, default="info")
    return Alert(
        title=f"{len(told)} alerts on {channel}: {len(firing)} firing, {resolved} resolved",
        body="\n".join(lines),
        severity=severity,
        status=Status.FIRING if firing else Status.RESOLVED,
        fingerprint=f"digest-{key}",
        labels={"notifier_digest": str(len(told))},
        source="notifier digest",
    )


def digest_thresholds(channels: Iterable[ChannelInfo]) -> dict[str, int]:
    """``{channel: threshold}`` of the channels that fold a backlog into a digest."""
    found = {}
    for c in channels:
        threshold = c.digest_threshold
        if threshold is None:
            threshold = default_threshold(c.rate_limit)
        if threshold:
            found[c.name] = threshold
    return found
