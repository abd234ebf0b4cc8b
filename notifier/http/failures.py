"""What a failed request becomes: requests' exceptions as :class:`TransportError` in
plain words ("connection refused by 127.0.0.1:8080", "name api.example.com not
resolved"), with the URLs, tokens and keys they quote scrubbed out first."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)

from notifier.errors import TransportError
from notifier.http.timelimit import AttemptLimit
from notifier.redact import redact, scrub_exception

_MAY_HAVE_SENT = "the server may have received the request"


def transport_error(
    exc: requests.RequestException,
    *,
    host: str = "the server",
    timeout: tuple[float, float] | None = None,
    limit: AttemptLimit | None = None,
) -> TransportError:
    """``exc`` as a :class:`TransportError` saying in plain words what failed and whether
    the request may have been sent; ``exc`` itself is scrubbed, since it becomes the
    error's cause.

    :param host: ``host:port`` the request went to, for the message.
    :param timeout: the ``(connect, read)`` seconds the attempt ran with.
    :param limit: the attempt's total-time limit; when it ran out, the failure it caused
        (the socket shut under the read) is reported as the timeout it is.
    """
    # requests quotes the full URL, access token or webhook key included.
    scrub_deep(exc)
    if limit is not None and limit.expired:
        return timed_out(limit, host)
    if isinstance(exc, requests.exceptions.SSLError):
        # Another try meets the same certificate: permanent until someone fixes it.
        return TransportError(redact(_tls_failure(exc, host)), sent=False, retryable=False)
    if isinstance(exc, requests.exceptions.ProxyError) and _first(exc, ssl.SSLError):
        # TLS to an https:// proxy failed: nothing was sent, and it fails the same way again.
        where = f"proxy {_proxy_address(exc) or 'the proxy'}"
        return TransportError(redact(_tls_failure(exc, where)), sent=False, retryable=False)
    sent = may_have_reached_server(exc)
    retryable = isinstance(exc, requests.ConnectionError | requests.Timeout)
    return TransportError(
        redact(describe(exc, sent, host, timeout)), sent=sent, retryable=retryable
    )


def timed_out(limit: AttemptLimit, host: str) -> TransportError:
    """The attempt ran out of its total time (its socket was shut under it)."""
    return TransportError(
        f"timed out after {limit.seconds:.1f} s waiting for the answer from {host} "
        f"({_MAY_HAVE_SENT})",
        sent=True,
        retryable=True,
    )


def scrub_deep(exc: BaseException) -> None:
    """Scrub messages, and the text and requests urllib3/requests keep as attributes
    (``MaxRetryError.url`` and ``_message``, ``RequestException.request``), which error
    reporters that serialise exception attributes would otherwise show."""
    scrub_exception(exc)
    for current in causes(exc):
        for name, value in list(getattr(current, "__dict__", {}).items()):
            if isinstance(value, str):  # url, urllib3's _message, ...
                setattr(current, name, redact(value))
        if isinstance(current, requests.RequestException):
            current.request = None  # its URL carries the credential


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it: causes, contexts, wrapped reasons."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        # ``reason`` is a wrapped exception in urllib3 but a plain string on ssl errors.
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__])
        todo.extend(current.args)
        todo.append(getattr(current, "reason", None))
        todo.append(getattr(current, "original_error", None))


def _first(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in causes(exc) if isinstance(e, kind)), None)


def _tls_failure(exc: BaseException, host: str) -> str:
    failed = _first(exc, ssl.SSLCertVerificationError)
    if failed is not None or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        why = getattr(failed, "verify_message", None)
        detail = f" ({why})" if why else ""
        return f"TLS certificate verification failed for {host}{detail}"
    reason = _first(exc, ssl.SSLError)
    text = getattr(reason, "reason", None) or type(reason or exc).__name__
    return f"TLS handshake with {host} failed ({text})"


def may_have_reached_server(exc: requests.RequestException) -> bool:
    """False only when the request provably never left: the connection was never made."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ProxyError):
        return True  # the proxy may have forwarded it
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return not isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema)


def describe(
    exc: requests.RequestException,
    sent: bool,
    host: str = "the server",
    timeout: tuple[float, float] | None = None,
) -> str:
    """What went wrong, in words an operator acts on; never urllib3's own text."""
    connect, read = timeout if timeout is not None else (None, None)
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out{_after(connect)} connecting to {host}"
    if isinstance(exc, requests.ReadTimeout) or _first(exc, ReadTimeoutError) is not None:
        return f"read timed out{_after(read)} waiting for the answer from {host} ({_MAY_HAVE_SENT})"
    unresolved = _first(exc, NameResolutionError)
    if unresolved is not None:
        return f"name {getattr(unresolved, '_host', None) or _name(host)} not resolved"
    refused = _first(exc, NewConnectionError)
    proxy = "proxy " if isinstance(exc, requests.exceptions.ProxyError) else ""
    if refused is not None:
        where = _address(refused) or host
        if _first(exc, ConnectionRefusedError) is not None:
            return f"connection refused by {proxy}{where}"
        return f"could not connect to {proxy}{where}{_os_reason(exc)}"
    if proxy:
        return f"the proxy failed to reach {host}{_os_reason(exc)} ({_MAY_HAVE_SENT})"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"the answer from {host} was cut off ({_MAY_HAVE_SENT})"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return f"the answer from {host} could not be decompressed"
    if isinstance(exc, requests.ConnectionError):
        if not sent:
            return f"could not connect to {host}{_os_reason(exc)}"
        if _first(exc, ConnectionResetError) is not None:
            return f"connection reset by {host} before the answer ({_MAY_HAVE_SENT})"
        return f"connection closed by {host} before the answer ({_MAY_HAVE_SENT})"
    return f"request to {host} failed ({type(exc).__name__})"


def _after(seconds: float | None) -> str:
    return f" after {seconds:.1f} s" if seconds is not None else ""


def _name(host: str) -> str:
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _address(error: BaseException) -> str | None:
    conn = getattr(error, "conn", None)
    name, port = getattr(conn, "host", None), getattr(conn, "port", None)
    if not name:
        return None
    return f"{name}:{port}" if port else str(name)


def _proxy_address(exc: BaseException) -> str | None:
    """``host:port`` of the proxy a request went through (never its credentials)."""
    for current in causes(exc):
        proxy = getattr(getattr(current, "pool", None), "proxy", None)
        if proxy is not None and getattr(proxy, "host", None):
            port = proxy.port or (443 if proxy.scheme == "https" else 80)
            return f"{proxy.host}:{port}"
    return None


def _os_reason(exc: BaseException) -> str:
    text = next((e.strerror for e in causes(exc) if isinstance(e, OSError) and e.strerror), None)
    return f" ({text})" if text else ""


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
