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
import binascii
import hmac
import json
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.server import LocalServer, Request, Response
from notifier.testing.serving import Served, serve_from_shell
from notifier_feishu.messages import BODY_LIMIT
from notifier_feishu.plugin import (
    FREQUENCY_LIMITED,
    KIND,
    PARAMS_ERROR,
    SIGN_FAILED,
    TOKEN_INVALID,
    TOO_MANY_REQUESTS,
)
from notifier_feishu.signing import signature

__all__ = ["BOT_SECRET", "BOT_TOKEN", "FakeFeishu", "Message"]

BOT_TOKEN = "0f1e2d3c-fake-feishu-hook-0001"  # noqa: S105 - a fake's credential
BOT_SECRET = "fakeFeishuSigningSecret0001"  # noqa: S105 - a fake's credential
HOOK_PREFIX = "/open-apis/bot/v2/hook/"
SIGN_WINDOW = 3600
_TYPES = ("text", "post", "image", "share_chat", "interactive")
MSG = {
    TOO_MANY_REQUESTS: "too many request",
    FREQUENCY_LIMITED: "frequency limited",
    TOKEN_INVALID: "param invalid: incoming webhook access token invalid",
    PARAMS_ERROR: "params error",
    SIGN_FAILED: "sign match fail or timestamp is not within one hour from current time",
}


class _Refuse(Exception):
    def __init__(self, code: int, msg: str = "") -> None:
        super().__init__(code, msg)
        self.code, self.msg = code, msg or MSG.get(code, "error")


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
            return self.body["content"]["text"]
        card = self.body.get("card", {})
        parts = [card.get("header", {}).get("title", {}).get("content", "")]
        for element in card.get("elements", []):
            parts.append(element.get("text", {}).get("content", ""))
        return "\n".join(p for p in parts if p)


class FakeFeishu(LocalServer):
    """Feishu's custom-bot webhooks.

    :param bots: webhook token -> signing secret (``None`` for a bot without signing).
    :param clock: drives signature freshness and the rate windows.
    """

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
        self.clock, self.limit = clock, limit
        self.per_second, self.per_minute = per_second, per_minute
        self._state = threading.Lock()
        self._messages: list[Message] = []
        self._answers: list[int] = []
        self._codes: list[int] = []
        self._times: dict[str, deque[float]] = {}
        super().__init__()

    def webhook_url(self, token: str = BOT_TOKEN) -> str:
        return f"{self.url}{HOOK_PREFIX}{token}"

    # -- controls ---------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int | None = TOO_MANY_REQUESTS,
        status: int = 503,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` bot calls with ``code`` (HTTP 200, checks skipped);
        with ``code=None``, with HTTP ``status`` instead."""
        if code is None:
            super().fail_next(count, status=status, path=path)
            return
        with self._state:
            self._codes.extend([code] * count)

    # -- observations -------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        with self._state:
            return list(self._messages)

    @property
    def answers(self) -> list[int]:
        """The ``code`` of every bot call, in order."""
        with self._state:
            return list(self._answers)

    # -- the endpoint -------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or not request.path.startswith(HOOK_PREFIX):
            return Response.from_json({"code": 404, "msg": "not found"}, 404)
        try:
            with self._state:
                if self._codes:
                    raise _Refuse(self._codes.pop(0))
            token = request.path[len(HOOK_PREFIX) :]
            body = self._body(request)
            with self._state:
                if token not in self.bots:
                    raise _Refuse(TOKEN_INVALID)
                secret = self.bots[token]
            if secret is not None:
                self._verify(body, secret)
            msg_type = self._check(body)
            with self._state:
                self._pace(token)
                raw = request.body.decode("utf-8")
                self._messages.append(Message(token, msg_type, body, raw, self.clock.time()))
            answer = {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}}
            answer["msg"] = "success"
        except _Refuse as refusal:
            answer = {"code": refusal.code, "data": {}, "msg": refusal.msg}
        with self._state:
            self._answers.append(answer["code"])
        return Response.from_json(answer)

    def _body(self, request: Request) -> dict[str, Any]:
        if len(request.body) > self.limit:
            # Feishu's exact code for an oversized body is undocumented; a params error.
            raise _Refuse(PARAMS_ERROR, f"request body exceeds {self.limit} bytes")
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _Refuse(PARAMS_ERROR, "body is not UTF-8 JSON") from None
        if not isinstance(body, dict):
            raise _Refuse(PARAMS_ERROR, "body is not a JSON object")
        return body

    def _verify(self, body: dict[str, Any], secret: str) -> None:
        stamp, sign = str(body.get("timestamp", "")), body.get("sign")
        if not stamp.isdigit() or abs(int(stamp) - self.clock.time()) > SIGN_WINDOW:
            raise _Refuse(SIGN_FAILED)
        try:
            given = base64.b64decode(str(sign), validate=True)
        except (binascii.Error, ValueError):
            raise _Refuse(SIGN_FAILED) from None
        if not hmac.compare_digest(given, base64.b64decode(signature(secret, int(stamp)))):
            raise _Refuse(SIGN_FAILED)

    def _check(self, body: dict[str, Any]) -> str:
        msg_type = body.get("msg_type")
        if msg_type not in _TYPES:
            raise _Refuse(PARAMS_ERROR, f"params error, msg_type need, got {msg_type!r}")
        if msg_type == "interactive":
            card = body.get("card")
            if not isinstance(card, dict) or not card.get("elements"):
                raise _Refuse(PARAMS_ERROR, "interactive messages need a card with elements")
        else:
            content = body.get("content")
            if not isinstance(content, dict) or (msg_type == "text" and not content.get("text")):
                raise _Refuse(PARAMS_ERROR, f"{msg_type} messages need content")
        return msg_type

    def _pace(self, token: str) -> None:
        now = self.clock.monotonic()
        times = self._times.setdefault(token, deque())
        while times and times[0] <= now - 60:
            times.popleft()
        last_second = sum(1 for t in times if t > now - 1)
        if last_second >= self.per_second or len(times) >= self.per_minute:
            raise _Refuse(FREQUENCY_LIMITED)
        times.append(now)


def _served(feishu: FakeFeishu) -> Served:
    table = (
        "[channels.feishu]\n"
        f"kind = {json.dumps(KIND)}\n"
        f"url = {json.dumps(feishu.webhook_url(BOT_TOKEN))}\n"
        f"secret = {json.dumps(BOT_SECRET)}\n"
    )
    return Served(feishu.root, "feishu", table)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake Feishu bot until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_feishu.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_feishu.testing", FakeFeishu, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
