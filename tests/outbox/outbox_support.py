"""Test support for the outbox: a scriptable stand-in for ``Dispatcher.deliver``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import attrs

from notifier.clock import FakeClock
from notifier.models import Alert, DeliveryContext, Outcome, Receipt


@attrs.define
class Sent:
    channel: str
    title: str
    context: DeliveryContext
    at: float


class Provider:
    """Stands in for ``Dispatcher.deliver``: scripted answers per channel, a send log.

    ``fail(channel, n, ...)`` makes the next ``n`` attempts on ``channel`` fail the way the
    dispatcher reports failures (``details["retryable"]``, ``details["retry_after"]``,
    ``details["rate_limited"]``); ``down`` channels fail retryably until taken out.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[Sent] = []
        self.attempts: list[Sent] = []
        self.down: set[str] = set()
        # Called with (channel, alert) as each attempt starts, to look at the outbox then.
        self.before_send: Callable[[str, Alert], object] | None = None
        self._script: dict[str, list[dict[str, Any]]] = {}

    def fail(self, channel: str, times: int = 1, **how: Any) -> None:
        self._script.setdefault(channel, []).extend([how] * times)

    def titles(self, channel: str) -> list[str]:
        return [s.title for s in self.sent if s.channel == channel]

    def __call__(self, channel: str, alert: Alert, context: DeliveryContext) -> Receipt:
        if self.before_send is not None:
            self.before_send(channel, alert)
        record = Sent(channel, alert.title, context, self.clock.time())
        self.attempts.append(record)
        script = self._script.get(channel)
        how = script.pop(0) if script else ({"error": "down"} if channel in self.down else None)
        if how is not None:
            details: dict[str, Any] = {"retryable": how.get("retryable", True)}
            if how.get("retry_after") is not None:
                details["retry_after"] = how["retry_after"]
            if how.get("rate_limited"):
                details["rate_limited"] = True
            error = how.get("error", "provider busy")
            return Receipt(channel, Outcome.FAILED, error=error, details=details)
        self.sent.append(record)
        return Receipt(channel, Outcome.DELIVERED, attempts=1, message_id=f"m{len(self.sent)}")


def alert(title: str = "disk full", **fields: Any) -> Alert:
    return Alert(title=title, **fields)


class Receiver:
    """A webhook receiver on a :class:`LocalServer`: records alert titles in arrival
    order; while ``down`` it answers 503 to everything."""

    def __init__(self, path: str | None = None) -> None:
        from notifier.testing.server import LocalServer, Response

        # The webhook channel registers its URL path as a secret, process-wide: a
        # distinctive path keeps ordinary words ("hook") out of other tests' redaction.
        self.path = path or f"/hooks/receiver-{secrets.token_hex(6)}"
        self.down = False
        self.titles: list[str] = []
        self.keys: list[str | None] = []
        self.server = LocalServer()

        def receive(request: Any) -> Any:
            if self.down:
                return Response(status=503, body=b"down for maintenance")
            self.titles.append(request.json()["title"])
            self.keys.append(request.header("Idempotency-Key"))
            return {"id": f"m{len(self.titles)}"}

        self.server.route("POST", self.path, receive)

    @property
    def url(self) -> str:
        return self.server.url.rstrip("/") + self.path

    def __enter__(self) -> Receiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def webhook_config(receivers: dict[str, Receiver], outbox: str, **channel_extra: str) -> str:
    """A config file's text: one webhook channel per receiver, then ``[outbox]``."""
    parts = []
    for name, receiver in receivers.items():
        extra = "".join(f"{k} = {v}\n" for k, v in channel_extra.items())
        parts.append(f'[channels.{name}]\nkind = "webhook"\nurl = "{receiver.url}"\n'
                     f"max_attempts = 1\n{extra}")  # fmt: skip
    return "\n".join(parts) + f"\n[outbox]\n{outbox}\n"
