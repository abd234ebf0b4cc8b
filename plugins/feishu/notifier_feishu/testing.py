"""A fake Feishu custom-bot API for tests: yours and ours.

:class:`FakeFeishu` is a real HTTP server on 127.0.0.1 (a
:class:`notifier.testing.LocalServer`) answering ``POST /open-apis/bot/v2/hook/<token>``
like Feishu: HTTP 200 with ``{"code", "msg", "data"}`` for every outcome. It checks the
token, and for signing bots the body's ``timestamp`` (seconds, within an hour of its
clock) and ``sign``; it enforces the 20 KB body limit and the 5-a-second and 100-a-minute
windows, and records what it accepted::

    from notifier_feishu.testing import FakeFeishu

    with FakeFeishu(bots={"hook-token": "signing-secret"}) as feishu:
        url = feishu.webhook_url("hook-token")   # the channel's `url`
        ...
        feishu.messages[0].msg_type              # "interactive"
        feishu.fail_next(3, code=11232)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.envelope import EnvelopeServer, Refusal, signature_problem
from notifier.testing.server import Request, Response
from notifier.testing.serving import Served, serve_from_shell

__all__ = ["BOT_SECRET", "BOT_TOKEN", "FakeFeishu", "Message", "bot_signature"]

BOT_TOKEN = "0f1e2d3c-fake-feishu-hook-0001"  # noqa: S105 - a fake's credential
BOT_SECRET = "fakeFeishuSigningSecret0001"  # noqa: S105 - a fake's credential
HOOK_PREFIX = "/open-apis/bot/v2/hook/"

# Feishu's facts, held here apart from the plugin so the fake tests the plugin instead
# of agreeing with it by construction.
TOO_MANY_REQUESTS = 9499
FREQUENCY_LIMITED = 11232  # over 5 a second or 100 a minute
TOKEN_INVALID = 19001
PARAMS_ERROR = 19002
SIGN_FAILED = 19021
BODY_LIMIT = 20 * 1024  # bytes of request body
SIGN_WINDOW = 3600
_TYPES = ("text", "post", "image", "share_chat", "interactive")
MSG = {
    TOO_MANY_REQUESTS: "too many request",
    FREQUENCY_LIMITED: "frequency limited",
    TOKEN_INVALID: "param invalid: incoming webhook access token invalid",
    PARAMS_ERROR: "params error",
    SIGN_FAILED: "sign match fail or timestamp is not within one hour from current time",
}


def bot_signature(secret: str, timestamp: int) -> str:
    """Feishu's ``sign``: base64 of the HMAC-SHA256 whose key is
    ``"<timestamp>\n<secret>"`` and whose message is empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.standard_b64encode(hmac.digest(key, b"", hashlib.sha256)).decode("ascii")


@attrs.frozen
class Message:
    """A message the fake accepted; ``raw`` is the request body as sent."""

    token: str
    msg_type: str
    body: Mapping[str, Any]
    raw: str
    at: float

    @property
    def text(self) -> str:
        """A text message's text, or a card's header title and ``lark_md`` contents."""
        if self.msg_type == "text":
            text: str = self.body["content"]["text"]
            return text
        card = self.body.get("card", {})
        parts = [card.get("header", {}).get("title", {}).get("content", "")]
        for element in card.get("elements", []):
            parts.append(element.get("text", {}).get("content", ""))
        return "\n".join(p for p in parts if p)


class FakeFeishu(EnvelopeServer):
    """Feishu's custom-bot webhooks.

    :param bots: webhook token -> signing secret (``None`` for a bot without signing).
    :param clock: drives signature freshness and the rate windows.
    """

    code_field, message_field, ok_message = "code", "msg", "success"
    refusal_texts = MSG

    def __init__(
        self,
        bots: Mapping[str, str | None] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        limit: int = BODY_LIMIT,
        per_second: int = 5,
        per_minute: int = 100,
    ) -> None:
        self.bots: dict[str, str | None] = dict(bots or {BOT_TOKEN: BOT_SECRET})
        self.limit = limit
        self.per_second, self.per_minute = per_second, per_minute
        self._messages: list[Message] = []
        super().__init__(clock=clock)

    def webhook_url(self, token: str = BOT_TOKEN) -> str:
        return f"{self.url}{HOOK_PREFIX}{token}"

    # -- controls ---------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int | None = TOO_MANY_REQUESTS,
        status: int = 503,
        retry_after: float | str | None = None,
        body: bytes = b"",
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` bot calls with ``code`` (HTTP 200, checks skipped);
        with ``code=None``, with HTTP ``status`` instead."""
        if code is None:
            super().fail_next(count, status=status, retry_after=retry_after, body=body, path=path)
        else:
            self.refuse_next(count, code)

    # -- observations -------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            return list(self._messages)

    # -- the endpoint -------------------------------------------------------------------

    def envelope(self, code: int, message: str, fields: Mapping[str, Any]) -> Response:
        answer: dict[str, Any] = {"code": code, "data": {}, "msg": message}
        if code == self.ok_code:
            answer = {"StatusCode": code, "StatusMessage": message, **answer}
        return Response.from_json(answer)

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or not request.path.startswith(HOOK_PREFIX):
            return Response.from_json({"code": 404, "msg": "not found"}, 404)
        return self.answer(request, self._accept)

    def _accept(self, request: Request) -> None:
        token = request.path[len(HOOK_PREFIX) :]
        if len(request.body) > self.limit:
            # Feishu's exact code for an oversized body is undocumented; a params error.
            raise Refusal(PARAMS_ERROR, f"request body exceeds {self.limit} bytes")
        body = self.json_object(request, PARAMS_ERROR)
        if token not in self.bots:
            raise Refusal(TOKEN_INVALID)
        secret = self.bots[token]
        if secret is not None and signature_problem(
            body.get("timestamp", ""),
            body.get("sign"),
            now=self.clock.time(),
            tolerance=SIGN_WINDOW,
            expected=lambda stamp: bot_signature(secret, stamp),
        ):
            raise Refusal(SIGN_FAILED)
        msg_type = _check(body)
        limits = [(self.per_second, 1.0), (self.per_minute, 60.0)]
        if not self.windows.admit(token, self.clock.monotonic(), limits):
            raise Refusal(FREQUENCY_LIMITED)
        raw = request.body.decode("utf-8")
        self._messages.append(Message(token, msg_type, body, raw, self.clock.time()))


def _check(body: dict[str, Any]) -> str:
    msg_type = body.get("msg_type")
    if not isinstance(msg_type, str) or msg_type not in _TYPES:
        raise Refusal(PARAMS_ERROR, f"params error, msg_type need, got {msg_type!r}")
    if msg_type == "interactive":
        card = body.get("card")
        if not isinstance(card, dict) or not card.get("elements"):
            raise Refusal(PARAMS_ERROR, "interactive messages need a card with elements")
    else:
        content = body.get("content")
        if not isinstance(content, dict) or (msg_type == "text" and not content.get("text")):
            raise Refusal(PARAMS_ERROR, f"{msg_type} messages need content")
    return msg_type


def _served(feishu: FakeFeishu) -> Served:
    options = {"kind": "feishu-bot", "url": feishu.webhook_url(BOT_TOKEN), "secret": BOT_SECRET}
    return Served.for_channel(feishu.root, "feishu", options)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake Feishu bot until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_feishu.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_feishu.testing", FakeFeishu, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
