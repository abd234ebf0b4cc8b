"""A small channel plugin and its fake provider, for testing the channel contract.

``EchoPlugin()`` is a correct plugin: it passes every contract check. Each *flaw* breaks
one behaviour the contract demands, the way real plugins get it wrong:

* ``"leaky"``: puts its token in error messages;
* ``"unbounded"``: ignores the provider's byte limit;
* ``"flat"``: renders resolved alerts exactly like firing ones;
* ``"all-retryable"``: reports every provider error as retryable;
* ``"raw-errors"``: lets the HTTP library's exceptions escape;
* ``"greedy"``: answers ``notifier_send`` for channels it did not build;
* ``"no-defaults"``: has an optional option without a default;
* ``"overrun"``: declares bounded sends but makes its request on a thread of its own,
  where the delivery's deadline does not follow.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

import notifier
from notifier.errors import NotifierError, ProviderError
from notifier.http import (
    Endpoint,
    ErrorCodes,
    QueryKeyAuth,
    RetryPolicy,
    client_from_options,
    errcode_envelope,
)
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, RateLimit
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.render import fit, render_text
from notifier.testing import LocalServer, Request

KIND = "echo-webhook"
MAX_BYTES = 512
TOKEN = "echo-token-0123456789abcdef"
DENIED, THROTTLED, TOO_LONG = 401, 429, 413

SEND = Endpoint(
    "send",
    "POST",
    "send",
    parse=errcode_envelope(ErrorCodes(auth=(DENIED,), rate_limited=(THROTTLED,))),
)


class EchoServer(LocalServer):
    """Accepts ``POST /send?token=...`` with ``{"text": ...}`` of at most MAX_BYTES bytes."""

    def setup(self) -> None:
        self.texts: list[str] = []
        self.mode = "ok"  # or "denied", "throttled"
        self.route("POST", "/send", self._send)

    def reset(self) -> None:
        """Back to a fresh, working provider (recorded texts and faults forgotten)."""
        super().reset()
        self.texts.clear()
        self.mode = "ok"

    def _send(self, request: Request) -> dict[str, Any]:
        if self.mode == "denied" or request.query.get("token") != TOKEN:
            return {"errcode": DENIED, "errmsg": "invalid token"}
        if self.mode == "throttled":
            return {"errcode": THROTTLED, "errmsg": "too many messages"}
        text = request.json()["text"]
        if len(text.encode("utf-8")) > MAX_BYTES:
            return {"errcode": TOO_LONG, "errmsg": f"text longer than {MAX_BYTES} bytes"}
        self.texts.append(text)
        return {"errcode": 0, "errmsg": "ok"}


class EchoChannel:
    def __init__(self, spec: ChannelSpec, context: BuildContext, flaws: Collection[str]) -> None:
        self.name = spec.name
        self.flaws = flaws
        self.token = spec.options["token"]
        auth = QueryKeyAuth("token", self.token)
        retry = RetryPolicy(max_attempts=int(spec.options["max_attempts"]))
        self.client = client_from_options(
            spec, context, spec.options["api_root"], auth, retry=retry
        )
        if "overrun" in flaws:
            self.client.timeout = (1.0, 3.0)  # what it waits out, instead of the deadline

    def __repr__(self) -> str:
        return f"EchoChannel({self.name!r})"

    def close(self) -> None:
        self.client.close()

    def send(self, alert: Alert) -> SendResult:
        text = alert.title if "flat" in self.flaws else render_text(alert)
        if "unbounded" not in self.flaws:
            text = fit(text, MAX_BYTES)[0]
        try:
            if "overrun" in self.flaws:
                with ThreadPoolExecutor(1) as pool:
                    result = pool.submit(self.client.call, SEND, json={"text": text}).result()
            else:
                result = self.client.call(SEND, json={"text": text})
        except NotifierError as exc:
            if "leaky" in self.flaws:
                leak = f"{exc} (token {self.token.reveal()})"
                raise ProviderError(leak, retryable=exc.retryable) from exc
            if "all-retryable" in self.flaws:
                exc.retryable = True
            if "raw-errors" in self.flaws:
                raise requests.HTTPError(str(exc)) from exc
            raise
        return SendResult(attempts=result.attempts)


class EchoPlugin:
    """The plugin object; register it like a plugin module."""

    def __init__(self, flaws: Collection[str] = ()) -> None:
        self.flaws = frozenset(flaws)

    @notifier.hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        options = (
            Option("api_root", required=True),
            Option("token", required=True, secret=True),
            Option("max_attempts", int, default=None if "no-defaults" in self.flaws else 2),
        )
        return [
            ChannelKind(
                KIND,
                lambda spec, context: EchoChannel(spec, context, self.flaws),
                options=options,
                rate_limit=RateLimit(10, 1),
                bounded=True,
            )
        ]

    @notifier.hookimpl
    def notifier_send(
        self, channel: Any, alert: Alert, delivery: DeliveryContext
    ) -> SendResult | None:
        if not isinstance(channel, EchoChannel):
            if "greedy" in self.flaws:
                return SendResult()
            return None
        return channel.send(alert)
