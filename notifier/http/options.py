"""Configuration options every HTTP-based channel kind shares, and a client from them.

A kind appends :data:`HTTP_OPTIONS` to its own option schema and builds its client with
:func:`client_from_options`, so timeouts, TLS verification and retries are configured the
same way for every provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from requests.auth import AuthBase

from notifier.errors import ConfigError, ConfigIssue
from notifier.http.client import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, HttpClient
from notifier.http.retry import RetryPolicy
from notifier.kinds import BuildContext, ChannelSpec, Option
from notifier.limits import MAX_HTTP_ATTEMPTS, MAX_HTTP_TIMEOUT, MAX_RESPONSE_BYTES
from notifier.redact import Secret, reveal

HTTP_OPTIONS: tuple[Option, ...] = (
    Option(
        "connect_timeout",
        float,
        default=DEFAULT_TIMEOUT[0],
        minimum=0.01,
        maximum=MAX_HTTP_TIMEOUT,
        help="seconds to wait for a TCP/TLS connection",
    ),
    Option(
        "read_timeout",
        float,
        default=DEFAULT_TIMEOUT[1],
        minimum=0.01,
        maximum=MAX_HTTP_TIMEOUT,
        help="seconds to wait for the whole answer once connected",
    ),
    Option(
        "verify_tls",
        bool,
        default=True,
        help="check the provider's TLS certificate; turn off only for a test deployment",
    ),
    Option(
        "max_attempts",
        int,
        default=3,
        minimum=1,
        maximum=MAX_HTTP_ATTEMPTS,
        help="requests per call at most, retries included",
    ),
    Option(
        "max_response_bytes",
        int,
        default=DEFAULT_MAX_RESPONSE_BYTES,
        minimum=1024,
        maximum=MAX_RESPONSE_BYTES,
        help="the most of an answer's body read from the provider; a longer one is an error",
    ),
)


def client_from_options(
    spec: ChannelSpec,
    context: BuildContext,
    api_root: str,
    auth: AuthBase | None = None,
    *,
    retry: RetryPolicy | None = None,
    observe: Callable[[Any], None] | None = None,
) -> HttpClient:
    """An :class:`HttpClient` for the channel ``spec`` describes.

    Options missing from ``spec.options`` take :data:`HTTP_OPTIONS` defaults; the pool
    size, clock and observer come from the host's ``context``.

    :param retry: a base policy whose ``max_attempts`` the channel's option overrides.
    """
    options = spec.options
    defaults = {opt.name: opt.default for opt in HTTP_OPTIONS}

    def get(name: str) -> Any:
        value = options.get(name)
        return defaults[name] if value is None else value

    base = retry or RetryPolicy()
    policy = RetryPolicy(
        max_attempts=int(get("max_attempts")),
        backoff=base.backoff,
        backoff_max=base.backoff_max,
        jitter=base.jitter,
        max_wait=base.max_wait,
    )
    return HttpClient(
        api_root,
        auth=auth,
        channel=spec.name,
        pool_size=context.pool_size,
        timeout=(float(get("connect_timeout")), float(get("read_timeout"))),
        verify_tls=bool(get("verify_tls")),
        retry=policy,
        clock=context.clock,
        observe=observe if observe is not None else context.observe,
        max_response_bytes=int(get("max_response_bytes")),
    )


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL with a host that Python's URL parser accepts
    (it refuses a bracketed host that is no IP address, ``http://[::1``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def split_webhook_url(url: str) -> tuple[str, str] | None:
    """``(root, token)`` of a webhook URL whose last path segment is its token: the
    client's API root and a value to keep as a :class:`~notifier.redact.Secret` and pass
    as a path parameter. ``None`` when ``url`` is not an http(s) URL ending in a token."""
    if not is_http_url(url):
        return None
    parts = urlsplit(url)
    head, _, token = parts.path.rstrip("/").rpartition("/")
    if parts.scheme not in ("http", "https") or not parts.netloc or not token or parts.query:
        return None
    return f"{parts.scheme}://{parts.netloc}{head}/", token


def webhook_client(
    spec: ChannelSpec,
    context: BuildContext,
    validate: Callable[[ChannelSpec], list[ConfigIssue]],
    auth: AuthBase | None = None,
) -> tuple[HttpClient, Secret]:
    """The client for a kind whose ``url`` option is a webhook URL ending in its token
    (see :func:`split_webhook_url`): rooted at the URL without the token, which comes back
    as a :class:`~notifier.redact.Secret` to pass as a path parameter at each call.

    :raises ConfigError: the URL has no such shape (a spec not made by the config
        loader), with the issues the kind's ``validate`` names.
    """
    parts = split_webhook_url(reveal(spec.options["url"]) or "")
    if parts is None:
        raise ConfigError(validate(spec))
    root, token = parts
    return client_from_options(spec, context, root, auth), Secret(token)
