"""One pooled, authenticating, caching, retrying HTTP client per provider configuration.

The client owns a ``requests.Session`` whose adapter pool follows the dispatcher's
concurrency, so deliveries reuse keep-alive connections. It resolves proxy settings from
the environment once, when built: with ``trust_env`` on, requests re-reads proxies and
``~/.netrc`` on every request, a large share of a loopback request's cost. It runs its
own retry loop (urllib3's is off) so that every attempt is counted and observed, and it
translates every low-level exception into :mod:`notifier.errors` with secrets scrubbed.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import time
import warnings
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import attrs
import requests
import requests.utils
from requests.auth import AuthBase
from requests.structures import CaseInsensitiveDict

from notifier import deadline
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import NotifierError, ProviderError, TokenInvalid, TransportError
from notifier.http import timelimit
from notifier.http.cache import MISSING, ExpiringCache
from notifier.http.endpoint import Endpoint
from notifier.http.envelopes import Parsed
from notifier.http.events import ERROR, OK, RETRY, RequestEvent, attempt_event, describe_event
from notifier.http.failures import shorten, timed_out, transport_error
from notifier.http.retry import RetryPolicy, answers_read_with, may_retry, retry_after_of
from notifier.http.session import ca_bundle, pooled_session
from notifier.http.wire import frozen, revealed, wire_value
from notifier.redact import install_log_redaction, redact, scrub_exception

log = logging.getLogger("notifier.http")

DEFAULT_TIMEOUT = (3.05, 10.0)  # connect just above a TCP retransmit window, then read
#: the most of an answer's body read from a provider (1 MiB); their answers are small
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
USER_AGENT = "notifier/0.1"
_REQUEST_ID_HEADERS = ("X-Request-Id", "X-Bkapi-Request-Id")


class InsecureTransportWarning(UserWarning):
    """TLS certificate verification is off for a channel."""


@attrs.frozen
class CallResult:
    """The outcome of one successful :meth:`HttpClient.call`.

    :param data: what the endpoint's parser returned.
    :param attempts: requests made, retries and the token-refresh retry included; 0 when
        the answer came from the cache.
    :param status: the final HTTP status.
    :param request_id: the provider's or gateway's request id, when it sent one.
    """

    data: Any
    attempts: int
    status: int | None
    request_id: str | None = None
    from_cache: bool = False


class _Steps(AuthBase):
    """The client's auth followed by an endpoint's own before-request steps."""

    def __init__(self, auth: AuthBase | None, steps: tuple[Callable[..., Any], ...]) -> None:
        self.auth, self.steps = auth, steps

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.auth is not None:
            request = self.auth(request)
        for step in self.steps:
            request = step(request) or request
        return request


class HttpClient:
    """Calls :class:`~notifier.http.endpoint.Endpoint` declarations under ``api_root``.

    :param api_root: base URL from deployment config; endpoint paths are joined onto it.
    :param auth: injected into every request of an ``authenticated`` endpoint.
    :param channel: the configured channel's name, for messages, logs and events.
    :param pool_size: keep-alive connections kept per host; match the dispatcher's
        concurrency so no delivery waits for or discards a connection.
    :param timeout: default ``(connect, read)`` seconds for every request. An attempt
        takes ``connect + read`` seconds at most in all (and never runs past the
        delivery's deadline), however slowly the server answers.
    :param verify_tls: ``False`` turns certificate checks off, with a warning.
    :param observe: called with a :class:`RequestEvent` after every attempt.
    :param max_response_bytes: the most of an answer's body read; a longer answer is a
        :class:`~notifier.errors.ProviderError`.
    """

    def __init__(
        self,
        api_root: str,
        *,
        auth: AuthBase | None = None,
        channel: str = "",
        pool_size: int = 8,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        verify_tls: bool = True,
        retry: RetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        observe: Callable[[RequestEvent], None] | None = None,
        cache_size: int = 256,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        install_log_redaction()  # urllib3 logs full URLs, query strings included, at DEBUG
        self.api_root = api_root.rstrip("/") + "/"
        self.auth = auth
        self.channel = channel
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.observe = observe
        self._rng = random.Random()
        self._cache: ExpiringCache[CallResult] = ExpiringCache(cache_size, clock=clock)
        self.session = pooled_session(pool_size, USER_AGENT)
        # Resolved once here (the session does not trust the environment per request).
        self.proxies: dict[str, str] = dict(requests.utils.get_environ_proxies(self.api_root))
        self.verify: bool | str = ca_bundle() if verify_tls else False
        if not verify_tls:
            text = f"TLS certificate verification is off for {self._who()} ({self.api_root})"
            warnings.warn(text, InsecureTransportWarning, stacklevel=2)
            log.warning(redact(text))

    def __repr__(self) -> str:
        return f"HttpClient({redact(self.api_root)!r}, channel={self.channel!r})"

    def _who(self) -> str:
        return f"channel {self.channel!r}" if self.channel else "HTTP client"

    # -- the call -------------------------------------------------------------------------

    def url_for(self, endpoint: Endpoint, path_params: Mapping[str, Any] | None = None) -> str:
        path = endpoint.path
        if path_params:
            quoted = {k: quote(str(v), safe="") for k, v in path_params.items()}
            path = path.format(**quoted)
        return self.api_root + path.lstrip("/")

    def call(
        self,
        endpoint: Endpoint,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        path_params: Mapping[str, Any] | None = None,
    ) -> CallResult:
        """Send ``endpoint`` with retries and return its parsed answer.

        :param params: query parameters (values may be :class:`~notifier.redact.Secret`).
        :param json: a body sent as UTF-8 JSON (``ensure_ascii=False``).
        :param idempotency_key: the provider deduplicates this call by this key (sent in
            ``endpoint.idempotency_header`` if set), so it may be retried even after the
            server may have received it.
        :raises NotifierError: with ``attempts`` set; low-level causes are scrubbed.
        """
        url = self.url_for(endpoint, path_params)
        params = revealed(params) if params else None
        request_headers = dict(revealed(headers) if headers else {})
        body = data
        if json is not None:
            # Secrets are revealed by the encoder's hook as it meets them: cheaper than
            # copying the whole body first to replace them.
            body = jsonlib.dumps(json, ensure_ascii=False, default=wire_value).encode("utf-8")
            request_headers.setdefault("Content-Type", "application/json")
        if idempotency_key and endpoint.idempotency_header:
            request_headers[endpoint.idempotency_header] = idempotency_key

        cache_key = None
        if endpoint.cache_ttl is not None and endpoint.method == "GET":
            cache_key = (self._identity(endpoint), endpoint.method, url, frozen(params))
            cached = self._cache.get(cache_key)
            if cached is not MISSING:
                return attrs.evolve(cached, attempts=0, from_cache=True)

        request = requests.Request(
            endpoint.method,
            url,
            params=params,
            data=body,
            headers=request_headers,
            auth=_Steps(self.auth if endpoint.authenticated else None, endpoint.before),
        )
        replay_safe = endpoint.idempotent or idempotency_key is not None
        result = self._attempts(endpoint, request, replay_safe=replay_safe)
        if cache_key is not None:
            self._cache.put(cache_key, result, endpoint.cache_ttl or 0)
        return result

    def _attempts(
        self, endpoint: Endpoint, request: requests.Request, *, replay_safe: bool
    ) -> CallResult:
        budget = self.retry.max_attempts
        attempt = failures = 0
        refreshed_token = False
        while True:
            attempt += 1
            started = time.perf_counter()
            prepared = self._prepare(endpoint, request, requests_made=attempt - 1)
            response: requests.Response | None = None
            try:
                response = self._send(endpoint, prepared)
                outcome = self._parse(endpoint, response)
            except NotifierError as exc:
                error = self._in_context(exc, endpoint, attempt, response)
                status = response.status_code if response is not None else None
                retry, wait = False, 0.0
                if isinstance(error, TokenInvalid):
                    # One refresh per call: a second invalid answer means the fresh token
                    # is rejected too, and asking again would loop.
                    invalidate = getattr(self.auth, "invalidate_request", None)
                    if not refreshed_token and invalidate is not None and endpoint.authenticated:
                        invalidate(prepared)
                        refreshed_token = retry = True
                        budget += 1  # a protocol step, not a failure retry
                elif attempt < budget and may_retry(error, replay_safe=replay_safe):
                    failures += 1
                    wait = self.retry.wait_for(error, failures, self._rng)
                    # A long server-requested pause is the outbox's job, not a thread's.
                    retry = wait <= self.retry.max_wait
                if retry and not _fits(wait):
                    retry = False  # the delivery's deadline comes first; the outbox retries
                self._report(endpoint, prepared.url, status, error, started, attempt, retry)
                if not retry:
                    raise error from exc  # the cause chain is already scrubbed
                if wait > 0:
                    self.clock.sleep(wait)
                continue
            self._report(
                endpoint, prepared.url, response.status_code, None, started, attempt, False
            )
            request_id = None
            if isinstance(outcome, Parsed):
                outcome, request_id = outcome.data, outcome.request_id
            if request_id is None:
                request_id = next(
                    (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers),
                    None,
                )
            return CallResult(outcome, attempt, response.status_code, request_id)

    def _prepare(
        self, endpoint: Endpoint, request: requests.Request, *, requests_made: int
    ) -> requests.PreparedRequest:
        """Build the request; auth runs here, so a token fetch happens here.

        Built directly, not with ``Session.prepare_request``: that merges the session's
        cookies, params, auth and hooks into every request (building and merging three
        cookie jars each time), none of which this client sets; only the session's
        default headers apply. It took about 100 us of a 1 ms loopback request.
        """
        try:
            headers = CaseInsensitiveDict(self.session.headers)
            for name, value in request.headers.items():
                if value is None:
                    headers.pop(name, None)  # None unsets a default header, as in requests
                else:
                    headers[name] = value
            prepared = requests.PreparedRequest()
            prepared.prepare(
                method=request.method,
                url=request.url,
                headers=headers,
                data=request.data,
                params=request.params,
                auth=request.auth,
                cookies=self.session.cookies,  # refuses every cookie: always empty
            )
            return prepared
        except NotifierError as exc:
            # This attempt never went out. (A token error may be shared by every thread
            # that waited for the same fetch: each raises its own copy.)
            raise exc.with_context(attempts=requests_made) from exc
        except Exception as exc:  # a malformed URL or parameter: a configuration problem
            scrub_exception(exc)
            raise TransportError(
                f"{self._label(endpoint)}: cannot build the request: {redact(str(exc))}",
                sent=False,
                retryable=False,
                attempts=requests_made,
            ) from exc

    def _send(self, endpoint: Endpoint, prepared: requests.PreparedRequest) -> requests.Response:
        """One request and its whole answer, within the attempt's total time and with at
        most ``max_response_bytes`` of body read."""
        timeout = deadline.cap(endpoint.timeout or self.timeout)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        total = connect + read
        left = deadline.remaining()
        if left is not None:
            total = min(total, max(left, 0.001))
        host = _host_of(prepared.url)
        with timelimit.limited(total) as limit:
            try:
                response = self.session.send(
                    prepared,
                    timeout=(connect, read),
                    proxies=self.proxies,
                    verify=self.verify,
                    allow_redirects=False,  # a redirect would resend (or drop) auth elsewhere
                    stream=True,  # read by us, up to the cap
                )
                self._read_body(response, host)
            except requests.RequestException as exc:
                raise transport_error(exc, host=host, timeout=(connect, read), limit=limit) from exc
        if limit.expired:
            # Cut off mid-headers, http.client takes the end of the stream for the end of
            # the headers: what looks like an answer is a truncated one.
            response.close()
            raise timed_out(limit, host)
        return response

    def _read_body(self, response: requests.Response, host: str) -> None:
        """Read the body into ``response.content``, refusing more than the cap: a body
        without end (a chunked stream that never stops) would otherwise fill memory."""
        cap = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        chunks: list[bytes] = []
        size = 0
        if not (declared.isdigit() and int(declared) > cap):
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > cap:
                    break
                chunks.append(chunk)
            else:
                response._content = b"".join(chunks)  # what .content, .json() and .text read
                return
        response.close()  # never hand a half-read connection back to the pool
        raise ProviderError(
            f"the answer from {host} (HTTP {response.status_code}) is larger than "
            f"{cap} bytes (max_response_bytes); stopped reading it",
            code=response.status_code,
        )

    def _parse(self, endpoint: Endpoint, response: requests.Response) -> Any:
        try:
            with answers_read_with(self.clock):
                return endpoint.parse(response)
        except NotifierError:
            raise
        except Exception as exc:  # a parser bug must still surface as a typed error
            scrub_exception(exc)
            raise ProviderError(
                f"could not read the answer (HTTP {response.status_code}): "
                f"{type(exc).__name__}: {shorten(redact(str(exc)))}",
                code=response.status_code,
            ) from exc

    # -- helpers --------------------------------------------------------------------------

    def _label(self, endpoint: Endpoint) -> str:
        return f"{self._who()}, {endpoint.name}"

    def _in_context(
        self,
        error: NotifierError,
        endpoint: Endpoint,
        attempt: int,
        response: requests.Response | None,
    ) -> NotifierError:
        """``error`` with the channel and endpoint before its message (once), so it says
        where it failed, this call's attempts so far, and the server's ``Retry-After``
        when the parser (one of a plugin's own, say) left it unread."""
        label = self._label(endpoint)
        message = None if error.message.startswith(label) else f"{label}: {redact(error.message)}"
        asked = None
        if error.retry_after is None and response is not None:
            asked = retry_after_of(response, self.clock)
        return error.with_context(message=message, attempts=attempt, retry_after=asked)

    def _identity(self, endpoint: Endpoint) -> str:
        if not endpoint.authenticated or self.auth is None:
            return ""
        return str(getattr(self.auth, "identity", id(self.auth)))

    def _report(
        self,
        endpoint: Endpoint,
        url: str | None,
        status: int | None,
        error: NotifierError | None,
        started: float,
        attempt: int,
        retry: bool,
    ) -> None:
        if self.observe is None and not log.isEnabledFor(logging.DEBUG):
            return  # nobody listens: skip redacting and formatting on the hot path
        outcome = OK if error is None else RETRY if retry else ERROR
        event = attempt_event(self.channel, endpoint, url, status, error, started, attempt, outcome)
        log.debug(describe_event(event))
        if self.observe is None:
            return
        try:
            self.observe(event)
        except Exception:  # an observer's bug must not fail a delivery
            log.exception("request observer failed for %s", self._label(endpoint))

    # -- lifecycle ------------------------------------------------------------------------

    def clear_cache(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _host_of(url: str | None) -> str:
    """``host:port`` of ``url`` for messages: never its path or query, which may hold a
    webhook token or key."""
    parts = urlsplit(url or "")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    name = parts.hostname or "the server"
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port}" if port else name


def _fits(wait: float) -> bool:
    """Whether waiting ``wait`` seconds still leaves time for another attempt."""
    left = deadline.remaining()
    return left is None or wait < left
