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
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.envelope import EnvelopeServer, Refusal, signature_problem
from notifier.testing.server import Request, Response
from notifier.testing.serving import Served, serve_from_shell

__all__ = ["ROBOT_SECRET", "ROBOT_TOKEN", "FakeDingTalk", "Message", "robot_signature"]

ROBOT_TOKEN = "fake-dingtalk-token-0001"  # noqa: S105 - a fake's credential
ROBOT_SECRET = "SECfake0dingtalk0signing0secret0001"  # noqa: S105 - a fake's credential

# DingTalk's facts, held here apart from the plugin so the fake tests the plugin instead
# of agreeing with it by construction.
BUSY = -1
TOO_FAST = 130101
TOKEN_NOT_EXIST = 300001
SECURITY = 310000  # bad signature, stale timestamp, missing keyword, IP not allowed
TOKEN_MISSING = 400101
#: DingTalk's answer for a malformed message (the fake's stand-in for "too long" as well)
INVALID_PARAM = 40035
CONTENT_LIMIT = 20000  # bytes of UTF-8 in text.content or markdown.text
SIGN_WINDOW_MS = 3_600_000
_TYPES = ("text", "markdown", "link", "actionCard", "feedCard")
ERRMSG = {
    BUSY: "系统繁忙",
    TOO_FAST: "send too fast, exceed 20 times per minute",
    TOKEN_NOT_EXIST: "token is not exist",
    TOKEN_MISSING: "access_token不存在",
    INVALID_PARAM: "缺少参数 or 不合法的参数",
}


def robot_signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` before URL-encoding: base64 of the HMAC-SHA256 of
    ``"<timestamp_ms>\n<secret>"`` keyed by the secret."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    mac = hmac.digest(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256)
    return base64.standard_b64encode(mac).decode("ascii")


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
        at: Mapping[str, Any] = self.body.get("at", {})
        return at


class FakeDingTalk(EnvelopeServer):
    """DingTalk's robot endpoint.

    :param robots: access token -> signing secret (``None`` for a robot without signing).
    :param clock: drives signature freshness and the rate window.
    :param rate: messages per robot per ``window`` seconds before it is throttled for
        ``throttle`` seconds.
    """

    refusal_texts = ERRMSG

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
        self.limit = limit
        self.rate, self.window, self.throttle = rate, window, throttle
        self._messages: list[Message] = []
        super().__init__(clock=clock)

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
        body: bytes = b"",
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` robot calls with ``errcode`` (HTTP 200, checks skipped);
        with ``errcode=None``, with HTTP ``status`` instead (a proxy or gateway failing)."""
        if errcode is None:
            super().fail_next(count, status=status, retry_after=retry_after, body=body, path=path)
        else:
            self.refuse_next(count, errcode)

    def remove_robot(self, token: str = ROBOT_TOKEN) -> None:
        """The robot was deleted: its token answers 300001 from now on."""
        with self.lock:
            self.robots.pop(token, None)

    # -- observations -------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            return list(self._messages)

    # -- the endpoint -------------------------------------------------------------------

    def _send(self, request: Request) -> Response:
        return self.answer(request, self._accept)

    def _accept(self, request: Request) -> None:
        token = self._authenticate(request)
        body = self._message(request)
        now = self.clock.monotonic()
        if not self.windows.admit(token, now, [(self.rate, self.window)], penalty=self.throttle):
            raise Refusal(TOO_FAST)
        self._messages.append(Message(token, body["msgtype"], body, self.clock.time()))

    def _authenticate(self, request: Request) -> str:
        token = request.query.get("access_token")
        if not token:
            raise Refusal(TOKEN_MISSING)
        if token not in self.robots:
            raise Refusal(TOKEN_NOT_EXIST)
        secret = self.robots[token]
        if secret is None:
            return token
        problem = signature_problem(
            request.query.get("timestamp", ""),
            request.query.get("sign", ""),
            now=self.clock.time() * 1000,
            tolerance=SIGN_WINDOW_MS,
            expected=lambda stamp: robot_signature(secret, stamp),
        )
        if problem == "timestamp":
            raise Refusal(SECURITY, "invalid timestamp")
        if problem == "sign":
            raise Refusal(SECURITY, "sign not match")
        return token

    def _message(self, request: Request) -> dict[str, Any]:
        body = self.json_object(request, INVALID_PARAM)
        msgtype = body.get("msgtype")
        if msgtype not in _TYPES or not isinstance(body.get(msgtype), dict):
            raise Refusal(INVALID_PARAM, f"unknown or missing msgtype {msgtype!r}")
        inner = body[msgtype]
        field = {"text": "content", "markdown": "text"}.get(msgtype)
        if field is not None:
            content = inner.get(field)
            if not isinstance(content, str) or not content.strip():
                raise Refusal(INVALID_PARAM, f"{msgtype}.{field} is empty")
            if len(content.encode("utf-8")) > self.limit:
                raise Refusal(INVALID_PARAM, f"{msgtype}.{field} exceeds {self.limit} bytes")
            if msgtype == "markdown" and not str(inner.get("title", "")).strip():
                raise Refusal(INVALID_PARAM, "markdown.title is empty")
        _check_at(body.get("at", {}))
        return body


def _check_at(at: Any) -> None:
    if not isinstance(at, dict):
        raise Refusal(INVALID_PARAM, "at must be an object")
    for field in ("atMobiles", "atUserIds"):
        values: Iterable[Any] = at.get(field, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise Refusal(INVALID_PARAM, f"at.{field} must be a list of strings")
    if not isinstance(at.get("isAtAll", False), bool):
        raise Refusal(INVALID_PARAM, "at.isAtAll must be true or false")


def _served(dingtalk: FakeDingTalk) -> Served:
    options = {"kind": "dingtalk-robot", "access_token": ROBOT_TOKEN, "secret": ROBOT_SECRET}
    options["api_root"] = dingtalk.api_root
    return Served.for_channel(dingtalk.api_root, "dingtalk", options)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake DingTalk robot until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_dingtalk.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_dingtalk.testing", FakeDingTalk, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
