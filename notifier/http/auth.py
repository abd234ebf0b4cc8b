"""Authentication strategies, injected before every request as ``requests.auth.AuthBase``.

Pick one per client: a query-parameter access token fetched from a token endpoint
(:class:`AccessTokenAuth` over a :class:`TokenCache`), API-gateway credentials
(:class:`GatewayAuth`), static headers or a bearer token, or a key in the URL for robot
webhooks (:class:`QueryKeyAuth`). Credentials are :class:`~notifier.redact.Secret`
values, revealed only while a request is prepared; no repr shows them.

Each strategy has an ``identity``: a short hash of its credential, never the credential,
which the client uses to key cached answers so two credentials never share one.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import attrs
import requests
from requests.auth import AuthBase

from notifier import deadline
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import AuthError, DeliveryTimeout, NotifierError
from notifier.http.cache import MISSING, ExpiringCache
from notifier.redact import Secret, redact, register, reveal, scrub_exception

if TYPE_CHECKING:
    from notifier.http.client import HttpClient
    from notifier.http.endpoint import Endpoint

#: ``fetch() -> (token, expires_in seconds)``
TokenFetcher = Callable[[], tuple[str, float]]


def credential_id(*parts: str | Secret | None) -> str:
    """A short, stable, non-reversible name for a credential, for cache keys and logs."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update((reveal(part) or "").encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def _as_secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


# --------------------------------------------------------------------------------------
# Access tokens
# --------------------------------------------------------------------------------------


class TokenStore(Protocol):
    """Where processes share access tokens, so that many processes (Celery workers on
    several machines) fetch one token per credential instead of one each.

    A :class:`TokenCache` given a store still caches the token in memory; only when it
    has none does it ask the store, which answers with the shared token or, when there is
    none, lets exactly one caller across all processes run ``fetch`` while the others wait
    for its token. :class:`notifier.celery.tokens.RedisTokenStore` is the Redis one.
    """

    def get(self, identity: str, fetch: Callable[[], tuple[str, float]]) -> tuple[str, float]:
        """The shared token of ``identity`` and the seconds it stays usable.

        :param fetch: returns a fresh ``(token, seconds usable)``; called by at most one
            caller at a time across every process sharing the store.
        """
        ...

    def invalidate(self, identity: str, token: str) -> bool:
        """Drop ``token`` if it is still the shared one of ``identity``."""
        ...


class _Flight:
    """One token fetch in progress; the threads that wait for it share its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.token: str | None = None
        self.error: BaseException | None = None


class TokenCache:
    """One credential's access token: fetched on first use, cached until ``expires_in``
    minus ``margin``, refetched after :meth:`invalidate`.

    Single flight: however many threads ask at once with no valid token, exactly one
    calls ``fetch``; the others wait for its result (or its error). Providers rate-limit
    their token endpoints, and 32 concurrent fetches would also race to overwrite each
    other's tokens.

    :param fetch: returns ``(token, expires_in)``; may raise a NotifierError.
    :param identity: names the credential (see :func:`credential_id`).
    :param margin: seconds before expiry at which the token counts as expired, so a
        token does not die between being read and reaching the provider.
    :param store: shares the token with other processes (see :class:`TokenStore`);
        ``None``: this process fetches its own.
    """

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        identity: str = "",
        margin: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
        store: TokenStore | None = None,
    ) -> None:
        self._fetch = fetch
        self.identity = identity
        self.margin = margin
        self.store = store
        self._cache: ExpiringCache[str] = ExpiringCache(maxsize=1, clock=clock)
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self.fetches = 0  # for tests and diagnostics: how many times fetch ran

    def __repr__(self) -> str:
        return f"TokenCache(identity={self.identity!r})"

    def get(self) -> str:
        with self._lock:
            token = self._cache.get("token")
            if token is not MISSING:
                return token
            flight = self._flight
            leader = flight is None
            if leader:
                flight = self._flight = _Flight()
        assert flight is not None
        if leader:
            self._lead(flight)
        elif not flight.done.wait(deadline.remaining()):
            raise DeliveryTimeout(
                "delivery_timeout reached while waiting for another thread's token fetch",
                attempts=0,
            )
        if flight.error is not None:
            raise flight.error
        assert flight.token is not None
        return flight.token

    def _lead(self, flight: _Flight) -> None:
        try:
            if self.store is None:
                token, ttl = self._fresh()
            else:
                token, ttl = self.store.get(self.identity, self._fresh)
                register(token)
            with self._lock:
                self._cache.put("token", token, ttl)
            flight.token = token
        except NotifierError as exc:
            flight.error = exc
        except Exception as exc:  # a broken fetch callable must not leak its text
            scrub_exception(exc)
            error = AuthError(f"could not obtain an access token: {redact(str(exc))}")
            error.__cause__ = exc
            flight.error = error
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()

    def _fresh(self) -> tuple[str, float]:
        """A new token from the provider and the seconds it stays usable (its lifetime
        less the margin)."""
        self.fetches += 1
        token, expires_in = self._fetch()
        if not token:
            raise AuthError("token endpoint answered without a token")
        register(token)  # from now on redact() masks it wherever it shows up
        ttl = float(expires_in) - self.margin
        if ttl <= 0:  # a token shorter-lived than the margin: use half its life
            ttl = float(expires_in) / 2
        return token, ttl

    def invalidate(self, token: str) -> bool:
        """Drop ``token`` if it is still the cached one; a token another thread already
        replaced stays replaced (so N threads seeing one expiry cause one refetch)."""
        if self.store is not None:
            self.store.invalidate(self.identity, token)
        with self._lock:
            if self._cache.get("token") == token:
                self._cache.pop("token")
                return True
            return False

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def endpoint_token_fetcher(
    client: HttpClient,
    endpoint: Endpoint,
    params: Mapping[str, Any] | None = None,
    *,
    json: Any = None,
    token_field: str = "access_token",  # noqa: S107 - a field name, not a credential
    expires_field: str = "expires_in",
    default_expires_in: float = 7200.0,
) -> TokenFetcher:
    """A fetcher calling ``endpoint`` (declare it ``authenticated=False``) through
    ``client`` and reading the token and its lifetime from the answer's data."""

    def fetch() -> tuple[str, float]:
        data = client.call(endpoint, params=params, json=json).data
        if not isinstance(data, Mapping) or not data.get(token_field):
            raise AuthError(f"{endpoint.name}: answer has no {token_field}")
        return str(data[token_field]), float(data.get(expires_field) or default_expires_in)

    return fetch


class AccessTokenAuth(AuthBase):
    """Adds ``?<param>=<token>`` from a :class:`TokenCache` to every request.

    The client calls :meth:`invalidate_request` when the provider says the token is
    invalid, then retries once with a fresh one.
    """

    def __init__(self, tokens: TokenCache, param: str = "access_token") -> None:
        self.tokens = tokens
        self.param = param

    @property
    def identity(self) -> str:
        return self.tokens.identity

    def __repr__(self) -> str:
        return f"AccessTokenAuth(param={self.param!r}, identity={self.identity!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.prepare_url(request.url, {self.param: self.tokens.get()})
        return request

    def invalidate_request(self, request: requests.PreparedRequest) -> None:
        """Invalidate the token this (prepared, sent) request carried."""
        query = dict(parse_qsl(urlsplit(request.url or "").query, keep_blank_values=True))
        token = query.get(self.param)
        if token:
            self.tokens.invalidate(token)


# --------------------------------------------------------------------------------------
# Static credentials
# --------------------------------------------------------------------------------------


@attrs.frozen
class QueryKeyAuth(AuthBase):
    """A key in the URL, as robot webhooks take it (``?key=...``); the key is the whole
    credential, so it is a Secret and the URL is never logged unredacted."""

    param: str
    value: Secret = attrs.field(converter=_as_secret, repr=False)

    @property
    def identity(self) -> str:
        return credential_id(self.param, self.value)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.prepare_url(request.url, {self.param: self.value.reveal()})
        return request


def _secret_headers(value: Mapping[str, str | Secret]) -> Mapping[str, Secret]:
    return {name: _as_secret(v) for name, v in value.items()}


@attrs.frozen
class HeaderAuth(AuthBase):
    """Fixed headers on every request (values are treated as secrets)."""

    headers: Mapping[str, Secret] = attrs.field(converter=_secret_headers, repr=False)

    @property
    def identity(self) -> str:
        return credential_id(*(f"{k}:{v.reveal()}" for k, v in sorted(self.headers.items())))

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for name, value in self.headers.items():
            request.headers[name] = value.reveal()
        return request


@attrs.frozen
class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>``."""

    token: Secret = attrs.field(converter=_as_secret, repr=False)

    @property
    def identity(self) -> str:
        return credential_id("bearer", self.token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token.reveal()}"
        return request


GATEWAY_HEADER = "X-Bkapi-Authorization"


@attrs.frozen
class GatewayAuth(AuthBase):
    """Enterprise API-gateway credentials: app code, app secret and a user name.

    Sent as the ``X-Bkapi-Authorization`` header, a JSON object with ``bk_app_code``,
    ``bk_app_secret`` and ``bk_username``. With ``in_body`` the same fields also go into
    a JSON body (or the query string of a request without one) for older gateways. Either
    way a field the caller already set is left alone, so one call can act as another user
    or target another environment.
    """

    app_code: str
    app_secret: Secret = attrs.field(converter=_as_secret, repr=False)
    username: str = ""
    in_body: bool = False

    @property
    def identity(self) -> str:
        return credential_id("gateway", self.app_code, self.app_secret, self.username)

    def _fields(self) -> dict[str, str]:
        return {
            "bk_app_code": self.app_code,
            "bk_app_secret": self.app_secret.reveal(),
            "bk_username": self.username,
        }

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        fields = self._fields()
        current: dict[str, Any] = {}
        if GATEWAY_HEADER in request.headers:
            try:
                current = dict(jsonlib.loads(request.headers[GATEWAY_HEADER]))
            except (ValueError, TypeError):
                current = {}
        request.headers[GATEWAY_HEADER] = jsonlib.dumps(
            {**fields, **current}, ensure_ascii=False, separators=(",", ":")
        )
        if self.in_body:
            self._fill_body_or_query(request, fields)
        return request

    @staticmethod
    def _fill_body_or_query(request: requests.PreparedRequest, fields: dict[str, str]) -> None:
        body = request.body
        content_type = request.headers.get("Content-Type", "")
        if body and "json" in content_type:
            raw = body.decode("utf-8") if isinstance(body, bytes) else body
            try:
                payload = jsonlib.loads(raw)
            except ValueError:
                return  # not ours to repair; the header still carries the credentials
            if isinstance(payload, dict):
                merged = {**fields, **payload}
                new = jsonlib.dumps(merged, ensure_ascii=False, separators=(",", ":"))
                request.body = new.encode("utf-8")
                request.prepare_content_length(request.body)
            return
        if not body:
            query = dict(parse_qsl(urlsplit(request.url or "").query, keep_blank_values=True))
            missing = {k: v for k, v in fields.items() if k not in query}
            if missing:
                request.prepare_url(request.url, missing)
