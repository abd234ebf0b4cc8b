"""What a failed request becomes: requests' exceptions as :class:`TransportError`,
with the URLs, tokens and keys they quote scrubbed out first."""

from __future__ import annotations

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from notifier.errors import TransportError
from notifier.redact import redact, scrub_exception


def transport_error(exc: requests.RequestException) -> TransportError:
    """``exc`` as a :class:`TransportError` saying whether the request may have been sent;
    ``exc`` itself is scrubbed, since it becomes the error's cause."""
    # requests quotes the full URL, access token or webhook key included.
    scrub_deep(exc)
    sent = may_have_reached_server(exc)
    retryable = isinstance(exc, requests.ConnectionError | requests.Timeout) and not (
        isinstance(exc, requests.exceptions.SSLError)
    )
    return TransportError(
        f"{describe(exc, sent)}: {shorten(redact(str(exc)))}", sent=sent, retryable=retryable
    )


def scrub_deep(exc: BaseException) -> None:
    """Scrub messages, and the text and requests urllib3/requests keep as attributes
    (``MaxRetryError.url`` and ``_message``, ``RequestException.request``), which error
    reporters that serialise exception attributes would otherwise show."""
    scrub_exception(exc)
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for name, value in list(getattr(current, "__dict__", {}).items()):
            if isinstance(value, str):  # url, urllib3's _message, ...
                setattr(current, name, redact(value))
        if isinstance(current, requests.RequestException):
            current.request = None  # its URL carries the credential
        todo.extend([current.__cause__, current.__context__])
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.append(getattr(current, "reason", None))


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


def describe(exc: requests.RequestException, sent: bool) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "read timed out (the server may have received the request)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        return "connection dropped after sending" if sent else "could not connect"
    return "request failed"


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
