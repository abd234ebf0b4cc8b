"""Provider calls declared as data.

A channel declares each call it makes as an :class:`Endpoint`: method, path under the
client's API root (which comes from deployment config), how to read the answer, whether
the answer may be cached and whether sending the call twice does no harm. The
:class:`~notifier.http.client.HttpClient` does the rest (auth, pooling, retries, events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import requests

from notifier.http.envelopes import json_or_status

#: reads a response: returns the data, or raises a :mod:`notifier.errors` error
Parser = Callable[[requests.Response], Any]
#: a before-request step: may change the prepared request (add a header, a parameter)
Step = Callable[[requests.PreparedRequest], "requests.PreparedRequest | None"]

#: methods that only read (RFC 9110 "safe")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: methods whose repetition has the effect of one request (RFC 9110 "idempotent"); these
#: may be sent again after the server may have received them
_IDEMPOTENT_METHODS = _SAFE_METHODS | {"PUT", "DELETE"}


def _only_reads_cache(
    instance: Endpoint, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and instance.method != "GET":
        raise ValueError(f"endpoint {instance.name!r}: only GET answers may be cached")
    if value is not None and value <= 0:
        raise ValueError(f"endpoint {instance.name!r}: cache_ttl must be positive")


def _default_idempotent(instance: Endpoint) -> bool:
    # HTTP semantics by default; a POST that only reads (or that the provider
    # deduplicates) says idempotent=True explicitly.
    return instance.method in _IDEMPOTENT_METHODS


def _upper(method: str) -> str:
    # A named function, which mypy's attrs plugin reads as a converter; str.upper itself
    # still raises TypeError for a method that is not a string.
    return str.upper(method)


@attrs.frozen
class Endpoint:
    """One provider call.

    :param name: short identifier used in events, logs and error messages (``"send"``).
    :param method: HTTP method.
    :param path: relative to the client's API root, e.g. ``"appchat/send"``; may contain
        ``{placeholders}`` filled from ``call(..., path_params=...)``.
    :param parse: the after-response step: checks the envelope, returns data or raises.
    :param before: extra before-request steps run after the client's auth.
    :param cache_ttl: seconds a successful answer is reused (GET only; ``None``: never).
    :param idempotent: sending it twice does no harm, so it may be retried even when the
        server may have received it. Defaults to true for GET/HEAD/OPTIONS/PUT/DELETE.
    :param authenticated: apply the client's auth; false for the token endpoint itself.
    :param timeout: ``(connect, read)`` seconds overriding the client's default.
    :param idempotency_header: send ``call(idempotency_key=...)`` in this header, for
        providers that deduplicate on it.
    """

    name: str
    method: str = attrs.field(converter=_upper)
    path: str
    parse: Parser = json_or_status
    description: str = ""
    before: tuple[Step, ...] = attrs.field(default=(), converter=tuple)
    cache_ttl: float | None = attrs.field(default=None, validator=_only_reads_cache)
    idempotent: bool = attrs.field(default=attrs.Factory(_default_idempotent, takes_self=True))
    authenticated: bool = True
    timeout: tuple[float, float] | None = None
    idempotency_header: str | None = None
