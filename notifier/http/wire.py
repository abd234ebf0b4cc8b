"""Values on their way to the wire: secrets revealed only there, parameters made
hashable for cache keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifier.redact import Secret, reveal


def revealed(value: Any) -> Any:
    """``value`` with every Secret inside replaced by its plain value, for the wire."""
    if isinstance(value, Mapping):
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [revealed(v) for v in value]
    return reveal(value) if isinstance(value, Secret) else value


def wire_value(value: Any) -> Any:
    """``json.dumps`` hook for what JSON cannot encode itself: a Secret's plain value."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def frozen(value: Any) -> Any:
    """A hashable, order-independent form of parameters, for cache keys."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value
