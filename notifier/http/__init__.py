"""The shared HTTP layer: declared endpoints over a pooled, authenticating, caching,
retrying client. See ``docs/http.md``.

A channel declares its provider calls as :class:`Endpoint` records, picks an auth
strategy, and calls them through one :class:`HttpClient` per configuration::

    send = Endpoint("send", "POST", "webhook/send", parse=errcode_envelope(codes))
    client = client_from_options(spec, context, spec.options["api_root"],
                                 QueryKeyAuth("key", spec.options["key"]))
    result = client.call(send, json={"msgtype": "text", "text": {"content": "hi"}})
"""

from notifier.http.auth import (
    GATEWAY_HEADER,
    AccessTokenAuth,
    BearerAuth,
    GatewayAuth,
    HeaderAuth,
    QueryKeyAuth,
    TokenCache,
    TokenFetcher,
    TokenStore,
    credential_id,
    endpoint_token_fetcher,
)
from notifier.http.cache import ExpiringCache
from notifier.http.client import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    CallResult,
    HttpClient,
    InsecureTransportWarning,
)
from notifier.http.endpoint import Endpoint, Parser, Step
from notifier.http.envelopes import (
    ERROR_TEXT_LIMIT,
    ErrorCodes,
    Parsed,
    check_status,
    errcode_envelope,
    error_text,
    gateway_envelope,
    json_or_status,
)
from notifier.http.events import RequestEvent
from notifier.http.options import (
    HTTP_OPTIONS,
    client_from_options,
    is_http_url,
    split_webhook_url,
)
from notifier.http.retry import (
    RetryPolicy,
    answers_read_with,
    may_retry,
    parse_retry_after,
    retry_after_of,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "ERROR_TEXT_LIMIT",
    "GATEWAY_HEADER",
    "HTTP_OPTIONS",
    "AccessTokenAuth",
    "BearerAuth",
    "CallResult",
    "Endpoint",
    "ErrorCodes",
    "ExpiringCache",
    "GatewayAuth",
    "HeaderAuth",
    "HttpClient",
    "InsecureTransportWarning",
    "Parsed",
    "Parser",
    "QueryKeyAuth",
    "RequestEvent",
    "RetryPolicy",
    "Step",
    "TokenCache",
    "TokenFetcher",
    "TokenStore",
    "answers_read_with",
    "check_status",
    "client_from_options",
    "credential_id",
    "endpoint_token_fetcher",
    "errcode_envelope",
    "error_text",
    "gateway_envelope",
    "is_http_url",
    "json_or_status",
    "may_retry",
    "parse_retry_after",
    "retry_after_of",
    "split_webhook_url",
]
