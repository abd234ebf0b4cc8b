"""The ``[celery]`` configuration table, validated into :class:`CelerySettings`.

``broker`` says where tasks travel (Redis or RabbitMQ), ``state`` where the workers keep
what they share (rate-limit windows, dedup records, circuit breakers, tokens, dead
letters): always Redis, the broker itself by default when that is Redis. The retry,
dedup and breaker keys are the outbox's own options (:mod:`notifier.outbox.settings`),
with the same meaning and defaults, so the guarantees read the same on both.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from notifier.kinds import Option
from notifier.limits import DAY, MAX_WORKERS
from notifier.outbox.policy import Backoff
from notifier.outbox.settings import OPTIONS as OUTBOX_OPTIONS
from notifier.redact import register
from notifier.values import Issues, option_values

REDIS_SCHEMES = ("redis", "rediss", "unix")
BROKER_SCHEMES = (*REDIS_SCHEMES, "amqp", "amqps", "pyamqp")
# The outbox's retry, dedup and breaker rules, shared as they are.
_SHARED = (
    "max_attempts",
    "max_age",
    "backoff_initial",
    "backoff_max",
    "dedup_window",
    "breaker_threshold",
    "breaker_cooldown",
)
OPTIONS: tuple[Option, ...] = (
    Option("broker", str, required=True, help="redis:// or amqp:// URL the tasks travel by"),
    Option("state", str, help="redis:// URL of the shared state (default: broker, if Redis)"),
    Option("queue", str, default="notifier", help="the Celery queue, and the state's prefix"),
    Option(
        "visibility_timeout",
        float,
        default=300.0,
        minimum=1,
        maximum=DAY,
        help="seconds before a Redis broker gives a lost worker's task to another",
    ),
    Option(
        "lost_after",
        float,
        default=0.0,
        minimum=0,
        maximum=DAY,
        help="seconds unseen before a queued delivery's task is sent again "
        "(0: twice visibility_timeout plus 300)",
    ),
    Option(
        "concurrency",
        int,
        default=8,
        minimum=1,
        maximum=MAX_WORKERS,
        help="deliveries one `notifier worker` runs at once",
    ),
    Option(
        "connect_timeout",
        float,
        default=5.0,
        minimum=0.1,
        maximum=300,
        help="seconds to wait for the broker or Redis before `send` gives up",
    ),
    *(o for o in OUTBOX_OPTIONS if o.name in _SHARED),
)
_OUTBOX_DEFAULTS = {o.name: o.default for o in OUTBOX_OPTIONS if o.name in _SHARED}


def redacted_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = parts.username or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


@attrs.frozen
class CelerySettings:
    """Validated ``[celery]`` settings."""

    broker: str = attrs.field(repr=redacted_url)
    state: str = attrs.field(repr=redacted_url)
    queue: str = "notifier"
    visibility_timeout: float = 300.0
    lost_after: float = 0.0
    concurrency: int = 8
    connect_timeout: float = 5.0
    # The outbox's defaults, so the two read the same.
    max_attempts: int = _OUTBOX_DEFAULTS["max_attempts"]
    max_age: float = _OUTBOX_DEFAULTS["max_age"]
    backoff_initial: float = _OUTBOX_DEFAULTS["backoff_initial"]
    backoff_max: float = _OUTBOX_DEFAULTS["backoff_max"]
    dedup_window: float = _OUTBOX_DEFAULTS["dedup_window"]
    breaker_threshold: int = _OUTBOX_DEFAULTS["breaker_threshold"]
    breaker_cooldown: float = _OUTBOX_DEFAULTS["breaker_cooldown"]

    @classmethod
    def from_table(
        cls,
        table: Any,
        issues: Issues,
        env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
    ) -> CelerySettings | None:
        """Settings from a parsed ``[celery]`` table; every problem goes to ``issues``
        (with its key path), and then the answer is ``None``."""
        before = len(issues.found)
        missing = [name for name in ("celery", "redis") if importlib.util.find_spec(name) is None]
        if missing:
            issues.add(
                "celery",
                f"the core's celery extra installed ({' and '.join(missing)} missing; "
                "docs/installing.md#the-celery-extra)",
            )
        values = option_values(table, OPTIONS, "celery", issues, env, base_dir or Path("."))
        broker = values.get("broker")
        if isinstance(broker, str) and _scheme(broker) not in BROKER_SCHEMES:
            issues.add(
                "celery.broker",
                f"a redis:// or amqp:// URL, got {redacted_url(broker)!r}",
            )
        state = values.get("state")
        if state is None and isinstance(broker, str) and _scheme(broker) in REDIS_SCHEMES:
            state = broker
        if state is None and isinstance(broker, str) and _scheme(broker) in BROKER_SCHEMES:
            issues.add(
                "celery.state",
                "a redis:// URL for the shared state: required when the broker is not Redis",
            )
        elif isinstance(state, str) and _scheme(state) not in REDIS_SCHEMES:
            issues.add("celery.state", f"a redis:// URL, got {redacted_url(state)!r}")
        low = values.get("backoff_initial", _OUTBOX_DEFAULTS["backoff_initial"])
        high = values.get("backoff_max", _OUTBOX_DEFAULTS["backoff_max"])
        if high < low:
            issues.add("celery.backoff_max", f"a number >= backoff_initial ({low:g}), got {high:g}")
        if len(issues.found) > before:
            return None
        for url in {broker, state}:
            password = urlsplit(str(url)).password
            if password:
                register(password)  # masked wherever a library logs the URL
        own = {k: v for k, v in values.items() if k not in ("broker", "state") and v is not None}
        return cls(broker=str(broker), state=str(state), **own)

    @property
    def grace(self) -> float:
        """Seconds a queued delivery counts as alive without a sign of its task:
        ``lost_after``, else past the longest a broker may hold it (twice the visibility
        timeout) and a backlog's few minutes."""
        return self.lost_after or 2 * self.visibility_timeout + 300.0

    @property
    def redis_broker(self) -> bool:
        return _scheme(self.broker) in REDIS_SCHEMES

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial, max(self.backoff_max, self.backoff_initial))
