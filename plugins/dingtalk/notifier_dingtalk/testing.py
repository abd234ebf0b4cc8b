"""A fake DingTalk robot API for tests: yours and ours.

:class:`FakeDingTalk` is a real HTTP server on 127.0.0.1 (a
:class:`notifier.testing.LocalServer`) answering ``POST /robot/send`` like DingTalk: HTTP
200 with ``errcode``/``errmsg`` for every outcome. It checks the ``access_token``, and for
signing robots the ``timestamp`` (milliseconds, within an hour of its clock) and ``sign``;
it enforces the content limit and the 20-a-minute window (after which the robot is
throttled for ten minutes), and records what it accepted::

    from notifier_dingtalk.testing import FakeDingTalk

    with FakeDingTalk(robots={"token-1": "SECsecret"}) as dingtalk:
        ...  # a channel with api_root = dingtalk.api_root, access_token "token-1"
        dingtalk.messages[0].content        # the text DingTalk would show
        dingtalk.fail_next(3, errcode=130101)

Codes for what DingTalk documents poorly are named constants, easy to correct.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.server import LocalServer, Request, Response
from notifier.testing.serving import Served, serve_from_shell
from notifier_dingtalk.auth import signature
from notifier_dingtalk.messages import CONTENT_LIMIT
from notifier_dingtalk.plugin import (
    BUSY,
    KIND,
    SECURITY,
    TOKEN_MISSING,
    TOKEN_NOT_EXIST,
    TOO_FAST,
)

__all__ = ["ROBOT_SECRET", "ROBOT_TOKEN", "FakeDingTalk", "Message"]

ROBOT_TOKEN = "fake-dingtalk-token-0001"  # noqa: S105 - a fake's credential
ROBOT_SECRET = "SECfake0dingtalk0signing0secret0001"  # noqa: S105 - a fake's credential
#: DingTalk's answer for a malformed message (the fake's stand-in for "too long" as well)
INVALID_PARAM = 40035
SIGN_WINDOW_MS = 3_600_000
_TYPES = ("text", "markdown", "link", "actionCard", "feedCard")
ERRMSG = {
    BUSY: "系统繁忙",
    TOO_FAST: "send too fast, exceed 20 times per minute",
    TOKEN_NOT_EXIST: "token is not exist",
    TOKEN_MISSING: "access_token不存在",
    INVALID_PARAM: "缺少参数 or 不合法的参数",
}


class _Refuse(Exception):
    def __init__(self, code: int, errmsg: str = "") -> None:
        super().__init__(code, errmsg)
        self.code, self.errmsg = code, errmsg or ERRMSG.get(code, "error")


@attrs.frozen
class Message:
    """A message the fake accepted. ``content`` is ``text.content`` or ``markdown.text``."""

    token: str
    msgtype: str
    body: Mapping[str, Any]
    at: float

    @property
    def content(self) -> str:
        inner = self.body.get(self.msgtype, {})
        return inner.get("content") or inner.get("text") or ""

    @property
    def mentions(self) -> Mapping[str, Any]:
        return self.body.get("at", {})


class FakeDingTalk(LocalServer):
    """DingTalk's robot endpoint.

    :param robots: access token -> signing secret (``None`` for a robot without signing).
    :param clock: drives signature freshness and the rate window.
    :param rate: messages per robot per ``window`` seconds before it is throttled for
        ``throttle`` seconds.
    """

    def __init__(
        self,
        robots: Mapping[str, str | None] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        limit: int = CONTENT_LIMIT,
        rate: int = 20,
        window: float = 60.0,
        throttle: float = 600.0,
    ) -> None:
        self.robots: dict[str, str | None] = dict(robots or {ROBOT_TOKEN: ROBOT_SECRET})
        self.clock, self.limit = clock, limit
        self.rate, self.window, self.throttle = rate, window, throttle
        self._state = threading.Lock()
        self._messages: list[Message] = []
        self._answers: list[int] = []
        self._errcodes: list[int] = []
        self._times: dict[str, deque[float]] = {}
        self._throttled_until: dict[str, float] = {}
        super().__init__()

    @property
    def api_root(self) -> str:
        """What a channel's ``api_root`` should be."""
        return self.root

    def setup(self) -> None:
        self.route("POST", "/robot/send", self._send)

    # -- controls ---------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        errcode: int | None = BUSY,
        status: int = 503,
        retry_after: float | str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` robot calls with ``errcode`` (HTTP 200, checks skipped);
        with ``errcode=None``, with HTTP ``status`` instead (a proxy or gateway failing)."""
        if errcode is None:
            super().fail_next(count, status=status, retry_after=retry_after, path=path)
            return
        with self._state:
            self._errcodes.extend([errcode] * count)

    def remove_robot(self, token: str = ROBOT_TOKEN) -> None:
        """The robot was deleted: its token answers 300001 from now on."""
        with self._state:
            self.robots.pop(token, None)

    # -- observations -------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        with self._state:
            return list(self._messages)

    @property
    def answers(self) -> list[int]:
        """The errcode of every robot call, in order."""
        with self._state:
            return list(self._answers)

    # -- the endpoint -------------------------------------------------------------------

    def _send(self, request: Request) -> Response:
        try:
            with self._state:
                if self._errcodes:
                    raise _Refuse(self._errcodes.pop(0))
            token = self._authenticate(request)
            body = self._message(request)
            with self._state:
                self._pace(token)
                self._messages.append(Message(token, body["msgtype"], body, self.clock.time()))
            code, errmsg = 0, "ok"
        except _Refuse as refusal:
            code, errmsg = refusal.code, refusal.errmsg
        with self._state:
            self._answers.append(code)
        return Response.from_json({"errcode": code, "errmsg": errmsg})

    def _authenticate(self, request: Request) -> str:
        token = request.query.get("access_token")
        if not token:
            raise _Refuse(TOKEN_MISSING)
        with self._state:
            if token not in self.robots:
                raise _Refuse(TOKEN_NOT_EXIST)
            secret = self.robots[token]
        if secret is None:
            return token
        stamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
        if not stamp.isdigit() or abs(int(stamp) - self.clock.time() * 1000) > SIGN_WINDOW_MS:
            raise _Refuse(SECURITY, "invalid timestamp")
        try:
            given = base64.b64decode(sign, validate=True)
        except (binascii.Error, ValueError):
            raise _Refuse(SECURITY, "sign not match") from None
        expected = base64.b64decode(signature(secret, int(stamp)))
        if not hmac.compare_digest(given, expected):
            raise _Refuse(SECURITY, "sign not match")
        return token

    def _message(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _Refuse(INVALID_PARAM, "body is not UTF-8 JSON") from None
        msgtype = body.get("msgtype") if isinstance(body, dict) else None
        if msgtype not in _TYPES or not isinstance(body.get(msgtype), dict):
            raise _Refuse(INVALID_PARAM, f"unknown or missing msgtype {msgtype!r}")
        inner = body[msgtype]
        field = {"text": "content", "markdown": "text"}.get(msgtype)
        if field is not None:
            content = inner.get(field)
            if not isinstance(content, str) or not content.strip():
                raise _Refuse(INVALID_PARAM, f"{msgtype}.{field} is empty")
            if len(content.encode("utf-8")) > self.limit:
                raise _Refuse(INVALID_PARAM, f"{msgtype}.{field} exceeds {self.limit} bytes")
            if msgtype == "markdown" and not str(inner.get("title", "")).strip():
                raise _Refuse(INVALID_PARAM, "markdown.title is empty")
        _check_at(body.get("at", {}))
        return body

    def _pace(self, token: str) -> None:
        now = self.clock.monotonic()
        if now < self._throttled_until.get(token, float("-inf")):
            raise _Refuse(TOO_FAST)
        times = self._times.setdefault(token, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.rate:
            self._throttled_until[token] = now + self.throttle
            raise _Refuse(TOO_FAST)
        times.append(now)


def _check_at(at: Any) -> None:
    if not isinstance(at, dict):
        raise _Refuse(INVALID_PARAM, "at must be an object")
    for field in ("atMobiles", "atUserIds"):
        values: Iterable[Any] = at.get(field, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _Refuse(INVALID_PARAM, f"at.{field} must be a list of strings")
    if not isinstance(at.get("isAtAll", False), bool):
        raise _Refuse(INVALID_PARAM, "at.isAtAll must be true or false")


def _served(dingtalk: FakeDingTalk) -> Served:
    table = (
        "[channels.dingtalk]\n"
        f"kind = {json.dumps(KIND)}\n"
        f"access_token = {json.dumps(ROBOT_TOKEN)}\n"
        f"secret = {json.dumps(ROBOT_SECRET)}\n"
        f"api_root = {json.dumps(dingtalk.api_root)}\n"
    )
    return Served(dingtalk.api_root, "dingtalk", table)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake DingTalk robot until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_dingtalk.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_dingtalk.testing", FakeDingTalk, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
