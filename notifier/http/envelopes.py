"""Reusable after-response steps: turn an answer into data or a typed error.

Providers report failure in two layers: the HTTP status (429, 5xx from them or a proxy)
and their own envelope, which for many Chinese APIs means HTTP 200 with a non-zero
``errcode``. A parser must check both; looking only at the status reports failures as
success. Messages here name the code and the provider's text; the client prefixes the
channel and endpoint names.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import requests

from notifier.errors import AuthError, NotifierError, ProviderError, RateLimited, TokenInvalid
from notifier.http.retry import retry_after_of
from notifier.redact import redact

Code = int | str


@attrs.frozen
class Parsed:
    """What a parser may return instead of bare data, to pass the provider's request id
    (a gateway's ``request_id``) on to the :class:`~notifier.http.client.CallResult`."""

    data: Any
    request_id: str | None = None


def _codes(values: Iterable[Code]) -> frozenset[Code]:
    return frozenset(values)


@attrs.frozen
class ErrorCodes:
    """How a provider's error codes map onto the error tree.

    Codes not listed are permanent :class:`ProviderError` failures.

    :param token_invalid: the access token is invalid or expired: refresh once and retry.
    :param busy: transient server trouble: retryable (within a call only when safe).
    :param rate_limited: over a rate limit: :class:`RateLimited`.
    :param auth: bad credentials or no permission: :class:`AuthError`, never retried.
    :param rate_limit_wait: seconds to suggest for ``retry_after`` when a rate-limited
        answer has no ``Retry-After`` header (e.g. 60 for per-minute windows).
    """

    token_invalid: frozenset[Code] = attrs.field(default=(), converter=_codes)
    busy: frozenset[Code] = attrs.field(default=(), converter=_codes)
    rate_limited: frozenset[Code] = attrs.field(default=(), converter=_codes)
    auth: frozenset[Code] = attrs.field(default=(), converter=_codes)
    rate_limit_wait: float | None = None

    def error(
        self,
        code: Code,
        provider_message: str,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
        label: str = "errcode",
    ) -> NotifierError:
        text = redact(str(provider_message or ""))
        message = f"{label} {code}: {text}" if text else f"{label} {code}"
        # Every error from an envelope carries the code, whatever its class, so events
        # and receipts can show it.
        error_class: type[NotifierError] = ProviderError
        retryable = code in self.busy
        if code in self.token_invalid:
            error_class, retryable = TokenInvalid, False
        elif code in self.rate_limited:
            error_class, retryable = RateLimited, True
            message = f"rate limited: {message}"
            if retry_after is None:
                retry_after = self.rate_limit_wait
        elif code in self.auth:
            error_class, retryable = AuthError, False
        return error_class(
            message,
            retryable=retryable,
            code=code,
            provider_message=text,
            request_id=request_id,
            retry_after=retry_after,
        )


#: how much of a provider's own error text a message shows
ERROR_TEXT_LIMIT = 200
# Where JSON error bodies commonly put their text (OAuth, RFC 7807, most REST APIs).
_MESSAGE_KEYS = ("message", "error_description", "detail", "error", "errmsg", "msg", "title")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")


def error_text(response: requests.Response, limit: int = ERROR_TEXT_LIMIT) -> str:
    """The provider's own words in an error answer: a JSON body's message field, a text
    body, or an HTML page's title; one line of at most ``limit`` characters, redacted,
    without control characters. ``""`` when the body says nothing readable."""
    body = response.content or b""
    if not body:
        return ""
    head = body[: limit * 50]
    text = head.decode(response.encoding or "utf-8", errors="replace")
    try:
        data = jsonlib.loads(body) if len(body) == len(head) else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = _message_in(data) or jsonlib.dumps(data, ensure_ascii=False)
    elif isinstance(data, str):
        text = data
    elif "html" in response.headers.get("Content-Type", "").lower() or text.lstrip()[:1] == "<":
        title = _HTML_TITLE.search(text)
        text = title.group(1) if title else ""
    # Redacted before it is cut, so no secret is shown even in part.
    words = redact(" ".join(_UNPRINTABLE.sub(" ", text).split()))
    return words if len(words) <= limit else words[: limit - 3] + "..."


def _message_in(data: dict[str, Any]) -> str:
    for key in _MESSAGE_KEYS:
        value = data.get(key)
        if isinstance(value, dict):  # {"error": {"code": 400, "message": "..."}}
            value = value.get("message") or value.get("msg")
        if isinstance(value, str) and value.strip():
            return value
    return ""


def check_status(response: requests.Response) -> None:
    """Raise for an HTTP-level failure: 429 -> :class:`RateLimited`, 5xx -> retryable
    :class:`ProviderError`, 401/403 -> :class:`AuthError`, other 3xx/4xx -> permanent.
    The message ends with the provider's own words (:func:`error_text`), when it sent
    any."""
    status = response.status_code
    if status < 300:
        return
    reason = redact(response.reason or "")
    said = error_text(response)
    message = f"HTTP {status} {reason}".rstrip() + (f": {said}" if said else "")
    reason = said or reason
    if status == 429:
        raise RateLimited(
            f"rate limited: {message}",
            code=status,
            provider_message=reason,
            retry_after=retry_after_of(response),
        )
    if status >= 500:
        raise ProviderError(
            message,
            code=status,
            provider_message=reason,
            retryable=True,
            retry_after=retry_after_of(response),
        )
    if status in (401, 403):
        raise AuthError(message, retryable=False, code=status, provider_message=reason)
    raise ProviderError(message, code=status, provider_message=reason)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise ProviderError(
            f"answer is not JSON (HTTP {response.status_code}, {redact(kind)})",
            code=response.status_code,
        ) from None  # the decoder's message says nothing useful and may quote the body


def json_or_status(response: requests.Response) -> Any:
    """The plain parser: HTTP status decides; the body is returned as JSON (or text, or
    ``None`` when empty)."""
    check_status(response)
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def errcode_envelope(
    codes: ErrorCodes | None = None,
    *,
    code_field: str = "errcode",
    message_field: str = "errmsg",
    ok: Iterable[Code] = (0,),
) -> Callable[[requests.Response], Any]:
    """A parser for ``{"errcode": 0, "errmsg": "ok", ...}`` APIs; returns the whole body.

    A 429 or 5xx is handled by status first (a proxy's error page has no envelope); any
    other answer must carry ``code_field``, whatever its HTTP status.
    """
    rules = codes or ErrorCodes()
    ok_codes = frozenset(ok)

    def parse(response: requests.Response) -> Any:
        if response.status_code == 429 or response.status_code >= 500:
            check_status(response)
        body = _json(response) if response.content else None
        if not isinstance(body, dict) or code_field not in body:
            check_status(response)
            raise ProviderError(
                f"answer has no {code_field} (HTTP {response.status_code})",
                code=response.status_code,
            )
        code = body[code_field]
        if code in ok_codes:
            return body
        raise rules.error(
            code,
            str(body.get(message_field, "")),
            retry_after=retry_after_of(response),
            label=code_field,
        )

    return parse


def gateway_envelope(
    codes: ErrorCodes | None = None,
    *,
    inner_code_field: str = "errcode",
    inner_message_field: str = "errmsg",
) -> Callable[[requests.Response], Any]:
    """A parser for API gateways answering ``{"result", "code", "message", "data",
    "request_id"}``; returns :class:`Parsed` with ``data``.

    ``result: false`` is a failure carrying the gateway's code and message; a provider
    ``errcode`` inside ``data`` is classified with ``codes`` either way. The gateway's
    request id is kept on the result and on errors, for support.
    """
    rules = codes or ErrorCodes()

    def parse(response: requests.Response) -> Any:
        if response.status_code == 429 or response.status_code >= 500:
            check_status(response)
        body = _json(response) if response.content else None
        if not isinstance(body, dict) or "result" not in body:
            check_status(response)
            raise ProviderError(
                f"answer is not a gateway envelope (HTTP {response.status_code})",
                code=response.status_code,
            )
        request_id = body.get("request_id")
        data = body.get("data")
        fields = data if isinstance(data, dict) else {}
        inner = fields.get(inner_code_field)
        if inner not in (None, 0):
            raise rules.error(
                inner,
                str(fields.get(inner_message_field, "")),
                request_id=request_id,
                retry_after=retry_after_of(response),
                label=inner_code_field,
            )
        if not body["result"]:
            code = body.get("code", response.status_code)
            text = redact(str(body.get("message", "")))
            raise ProviderError(
                f"gateway code {code}: {text}",
                code=code,
                provider_message=text,
                request_id=request_id,
            )
        return Parsed(data, request_id)

    return parse
