"""A faithful fake WeCom server for tests: yours and ours.

:class:`FakeWeCom` is a real HTTP server on 127.0.0.1 (a
:class:`notifier.testing.LocalServer`) that answers like the provider: HTTP 200 with an
``errcode``/``errmsg`` envelope for every provider error, access tokens that expire by an
injectable clock, app group chats, application messages with partial failures and the
duplicate check, group robots with their byte limits and 20-a-minute window, and the
enterprise API gateway with its own envelope. Point a channel's ``api_root`` at
:attr:`FakeWeCom.api_root` (or ``gateway_root`` at :attr:`FakeWeCom.gateway_root`)::

    from notifier.clock import FakeClock
    from notifier_wework.testing import FakeWeCom

    clock = FakeClock()
    with FakeWeCom(clock=clock) as wecom:
        token = requests.get(wecom.api_root + "gettoken",
                             params={"corpid": wecom.corp_id, "corpsecret": wecom.secret}).json()
        clock.advance(7200)                       # the token is now stale: 42001
        wecom.fail_next(2, "busy")                # the next two API calls answer errcode -1
        wecom.robot_messages("robot-key")         # what a robot accepted, in order

The pytest plugin :mod:`notifier_wework.pytest_plugin` (registered automatically when the
distribution is installed) provides ``wework_server`` and ``wework_clock`` fixtures.

Facts follow "What WeCom does" in ``docs/channels/wework.md``; the codes the provider
documents poorly are named constants below so they are easy to correct.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.envelope import EnvelopeServer, Refusal
from notifier.testing.server import Request, Response
from notifier.testing.serving import Served, serve_from_shell

__all__ = [
    "ERRMSG",
    "Call",
    "Chat",
    "FakeWeCom",
    "Sent",
]

OK = 0
BUSY = -1
INVALID_SECRET = 40001
INVALID_USER = 40003
INVALID_MSGTYPE = 40008
INVALID_CORPID = 40013
INVALID_TOKEN = 40014
INVALID_AGENTID = 40056
INVALID_PARAM = 40058
TOKEN_MISSING = 41001
CORPID_MISSING = 41002
SECRET_MISSING = 41004
TOKEN_EXPIRED = 42001
EMPTY_CONTENT = 44004
FREQ_LIMIT = 45009
BAD_JSON = 47001
ALL_INVALID = 81013
CHAT_NOT_FOUND = 86001
CHAT_EXISTS = 86215
INVALID_KEY = 93000
ROBOT_DISABLED = 93004
GATEWAY_AUTH_FAILED = 1640001  # the gateway's own "app authentication failed" code

ERRMSG: dict[int, str] = {
    OK: "ok",
    BUSY: "system busy",
    INVALID_SECRET: "invalid credential",
    INVALID_USER: "invalid userid",
    INVALID_MSGTYPE: "invalid message type",
    INVALID_CORPID: "invalid corpid",
    INVALID_TOKEN: "invalid access_token",
    INVALID_AGENTID: "invalid agentid",
    INVALID_PARAM: "invalid parameter",
    TOKEN_MISSING: "access_token missing",
    CORPID_MISSING: "corpid missing",
    SECRET_MISSING: "corpsecret missing",
    TOKEN_EXPIRED: "access_token expired",
    EMPTY_CONTENT: "empty content",
    FREQ_LIMIT: "api freq out of limit",
    BAD_JSON: "data format error",
    ALL_INVALID: "user & party & tag all invalid",
    CHAT_NOT_FOUND: "invalid chatid",
    CHAT_EXISTS: "chatid already exists",
    INVALID_KEY: "invalid webhook url",
    ROBOT_DISABLED: "webhook robot disabled",
}

TEXT_LIMIT = 2048  # bytes of UTF-8
MARKDOWN_LIMIT = 4096
NEWS_TITLE_LIMIT = 128
NEWS_DESCRIPTION_LIMIT = 512
CHAT_NAME_CHARS = 50
MAX_CHAT_MEMBERS = 2000
DUPLICATE_INTERVAL = 1800.0
MAX_DUPLICATE_INTERVAL = 4 * 3600.0
_CHAT_ID = re.compile(r"[0-9A-Za-z]{1,32}")
_GATEWAY_FIELDS = ("bk_app_code", "bk_app_secret", "bk_username")
_GATEWAY_RESOURCES = {"create_appchat/": "appchat/create", "send_appchat/": "appchat/send"}
_CHAT_TYPES = frozenset(
    {"text", "markdown", "image", "voice", "video", "file", "textcard", "news", "mpnews"}
)
_APP_TYPES = _CHAT_TYPES | {"template_card", "miniprogram_notice"}
_ROBOT_TYPES = frozenset(
    {"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"}
)


@attrs.frozen
class Call:
    """One request to a provider endpoint, parsed, with the errcode it was answered.

    :param endpoint: ``"gettoken"``, ``"appchat/send"``, ``"webhook/send"``,
        ``"gateway/send_appchat"``, ...
    :param body: the parsed JSON body (``None`` for a GET or an unparsable body).
    :param errcode: the answer's ``errcode`` (the gateway's ``code`` for gateway calls).
    """

    endpoint: str
    method: str
    query: Mapping[str, str]
    body: Any
    headers: Mapping[str, str]
    at: float
    errcode: int


@attrs.frozen
class Sent:
    """A message the fake accepted for delivery.

    :param via: ``"appchat"``, ``"app"`` (application message), ``"robot"`` or
        ``"gateway"``.
    :param target: the chat id, the robot key, or ``"app:<agentid>"``.
    :param recipients: for application messages, the valid users, parties and tags.
    """

    via: str
    target: str
    msgtype: str
    body: Mapping[str, Any]
    at: float
    msgid: str = ""
    recipients: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def content(self) -> str | None:
        """``text``/``markdown`` content, else ``None``."""
        inner = self.body.get(self.msgtype)
        return inner.get("content") if isinstance(inner, Mapping) else None


@attrs.define
class Chat:
    """An app group chat as the fake holds it."""

    chat_id: str
    name: str
    owner: str
    members: list[str]


@attrs.define
class _Token:
    secret: str
    expires_at: float


def _ids(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, str):
        raise Refusal(INVALID_PARAM, "recipients are '|'-separated strings")
    return [v for v in value.split("|") if v]


class FakeWeCom(EnvelopeServer):
    """The WeCom API, app group chats, application messages, robots and the gateway.

    :param corp_id: the corp id ``gettoken`` accepts.
    :param secret: the application's secret; ``apps`` maps more secrets to agent ids.
    :param agent_id: the agent id of the application ``secret`` belongs to.
    :param token_lifetime: seconds a token stays valid (``expires_in``).
    :param clock: drives token expiry, the robot window and the duplicate check.
    :param robot_keys: webhook keys of existing robots.
    :param users, parties, tags: the directory; other ids are invalid recipients.
    :param gateway_apps: app code to app secret, for the API gateway.
    :param robot_rate: messages per robot per ``robot_window`` seconds.
    """

    api_prefix = "/cgi-bin/"
    gateway_prefix = "/gateway/"
    refusal_texts = ERRMSG
    unscripted_endpoints = frozenset({"gettoken"})
    scripted_detail = "injected fault"

    def __init__(
        self,
        *,
        corp_id: str = "ww0fakecorp000001",
        secret: str = "fake-app-secret-0001",  # noqa: S107 - a fake's credential
        agent_id: int = 1000002,
        apps: Mapping[str, int] | None = None,
        token_lifetime: float = 7200.0,
        clock: Clock = SYSTEM_CLOCK,
        robot_keys: Iterable[str] = ("fake-robot-key-0001",),
        users: Iterable[str] = ("zhangsan", "lisi", "wangwu", "zhaoliu"),
        parties: Iterable[str] = ("1", "2"),
        tags: Iterable[str] = ("1",),
        gateway_apps: Mapping[str, str] | None = None,
        robot_rate: int = 20,
        robot_window: float = 60.0,
    ) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.apps: dict[str, int] = {secret: agent_id, **(apps or {})}
        self.token_lifetime = token_lifetime
        self.robot_keys: set[str] = set(robot_keys)
        self.disabled_robots: set[str] = set()
        self.users, self.parties, self.tags = set(users), set(parties), set(tags)
        self.gateway_apps = dict(gateway_apps or {"fake-app": "fake-gateway-secret-0001"})
        self.robot_rate, self.robot_window = robot_rate, robot_window
        self.token_requests = 0
        self.duplicates_dropped = 0
        self.chats: dict[str, Chat] = {}
        self._tokens: dict[str, _Token] = {}
        self._calls: list[Call] = []
        self._sent: list[Sent] = []
        self._recent_app: dict[str, tuple[float, str]] = {}
        self._expire_after: int | None = None
        self._issued: list[str] = []
        super().__init__(clock=clock)

    # -- addresses ------------------------------------------------------------------------

    @property
    def api_root(self) -> str:
        """What a channel's ``api_root`` should be: ``http://127.0.0.1:PORT/cgi-bin/``."""
        return self.url + self.api_prefix

    @property
    def gateway_root(self) -> str:
        """What a gateway channel's ``gateway_root`` should be."""
        return self.url + self.gateway_prefix

    def webhook_url(self, key: str | None = None) -> str:
        key = key if key is not None else next(iter(sorted(self.robot_keys)))
        return f"{self.api_root}webhook/send?key={key}"

    # -- controls ---------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Make every token issued so far stale: calls with one answer 42001."""
        with self.lock:
            for token in self._tokens.values():
                token.expires_at = float("-inf")

    def expire_tokens_after(self, calls: int) -> None:
        """Once ``calls`` more API calls (not ``gettoken``) have been answered, make every
        token issued until then stale: a token expiring in the middle of a burst."""
        with self.lock:
            self._expire_after = calls

    def _count_toward_expiry(self, endpoint: str) -> None:
        with self.lock:
            if self._expire_after is None or endpoint == "gettoken":
                return
            self._expire_after -= 1
            if self._expire_after <= 0:
                self._expire_after = None
                for token in self._tokens.values():
                    token.expires_at = float("-inf")

    def forget_tokens(self) -> None:
        """Forget every token issued so far: calls with one answer 40014."""
        with self.lock:
            self._tokens.clear()

    @property
    def issued_tokens(self) -> list[str]:
        """Every token handed out, stale and forgotten ones included: what must never
        appear in a client's output."""
        with self.lock:
            return list(self._issued)

    @property
    def valid_tokens(self) -> list[str]:
        now = self.clock.monotonic()
        with self.lock:
            return [t for t, v in self._tokens.items() if v.expires_at > now]

    def add_users(self, *ids: str) -> None:
        with self.lock:
            self.users.update(ids)

    def add_parties(self, *ids: str) -> None:
        with self.lock:
            self.parties.update(ids)

    def add_tags(self, *ids: str) -> None:
        with self.lock:
            self.tags.update(ids)

    def add_robot(self, key: str) -> None:
        with self.lock:
            self.robot_keys.add(key)
            self.disabled_robots.discard(key)

    def disable_robot(self, key: str) -> None:
        """The robot was removed from its group: its key answers 93004."""
        with self.lock:
            self.disabled_robots.add(key)

    def fail_next(
        self,
        count: int = 1,
        kind: str | None = None,
        *,
        errcode: int | None = None,
        status: int = 503,
        retry_after: float | str | None = None,
        body: bytes = b"",
        delay: float = 1.0,
        path: str | None = None,
        after: int = 0,
    ) -> None:
        """Make the next ``count`` matching requests fail.

        :param kind: ``"busy"`` (errcode -1), ``"rate"`` (errcode 45009), ``"errcode"``
            (``errcode``), all with HTTP 200; ``"5xx"`` (HTTP ``status``, optionally with
            ``Retry-After``), ``"drop"`` (connection closed without an answer), ``"slow"``
            (answer after ``delay`` real seconds). ``None`` is the plain
            :meth:`LocalServer.fail_next`.
        :param path: an endpoint (``"webhook/send"``, ``"send_appchat/"``) or a full path.
            Envelope faults without a path skip ``gettoken``.
        :param after: envelope faults only: let this many matching calls through first
            (``after=1``: the second part of a split message fails).
        """
        full = self._path(path)
        if kind in (None, "5xx"):
            super().fail_next(count, status=status, retry_after=retry_after, body=body, path=full)
        elif kind == "drop":
            self.drop_next(count, path=full)
        elif kind == "slow":
            self.delay_next(delay, count, path=full)
        elif kind in ("busy", "rate", "errcode"):
            code = {"busy": BUSY, "rate": FREQ_LIMIT}.get(kind, errcode)
            if code is None:
                raise ValueError("kind='errcode' needs errcode=")
            self.refuse_next(count, code, path=full, after=after)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")

    def reset(self) -> None:
        """Forget recorded requests, calls, messages and faults; chats, tokens, robots'
        windows and the directory stay."""
        super().reset()
        with self.lock:
            self._calls.clear()
            self._sent.clear()
            self.token_requests = 0

    # -- observations ---------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self.lock:
            return list(self._calls)

    def calls_to(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    @property
    def sent(self) -> list[Sent]:
        """Every message accepted for delivery, in order."""
        with self.lock:
            return list(self._sent)

    def chat_messages(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.via in ("appchat", "gateway") and s.target == chat_id]

    def robot_messages(self, key: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.via == "robot" and key in (None, s.target)]

    def app_messages(self) -> list[Sent]:
        return [s for s in self.sent if s.via == "app"]

    # -- routing ----------------------------------------------------------------------------

    def setup(self) -> None:
        api = {
            ("GET", "gettoken"): self._gettoken,
            ("POST", "appchat/create"): self._appchat_create,
            ("GET", "appchat/get"): self._appchat_get,
            ("POST", "appchat/update"): self._appchat_update,
            ("POST", "appchat/send"): self._appchat_send,
            ("POST", "message/send"): self._message_send,
            ("POST", "webhook/send"): self._webhook_send,
        }
        for (method, name), func in api.items():
            self.envelope_route(method, self.api_prefix + name, self._parsed(func), endpoint=name)
        for resource, name in _GATEWAY_RESOURCES.items():
            self.envelope_route(
                "POST",
                self.gateway_prefix + resource,
                self._gateway(name),
                endpoint="gateway/" + resource.rstrip("/"),
                envelope=_gateway_envelope,
            )

    def _path(self, path: str | None) -> str | None:
        if path is None or path.startswith("/"):
            return path
        prefix = self.gateway_prefix if path in _GATEWAY_RESOURCES else self.api_prefix
        return prefix + path

    def refusal_message(self, refusal: Refusal) -> str:
        if refusal.code == GATEWAY_AUTH_FAILED:
            return refusal.detail  # the gateway's own words, not a WeCom errmsg
        text = self.refusal_texts.get(refusal.code, "error")
        if refusal.detail:
            text += f", {refusal.detail}"
        return (
            f"{text}, hint: [{secrets.token_hex(8)}], from ip: 127.0.0.1, "
            f"more info at https://open.work.weixin.qq.com/devtool/query?e={refusal.code}"
        )

    def answered(self, request: Request, endpoint: str, code: int) -> None:
        body = None
        if request.method != "GET":
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                body = request.json()
        headers = dict(request.headers)
        at = self.clock.monotonic()
        self._calls.append(
            Call(endpoint, request.method, dict(request.query), body, headers, at, code)
        )
        self._count_toward_expiry(endpoint)

    def _parsed(
        self, func: Callable[[Request, Any], dict[str, Any]]
    ) -> Callable[[Request], dict[str, Any]]:
        def handler(request: Request) -> dict[str, Any]:
            body = None if request.method == "GET" else self.json_object(request, BAD_JSON)
            return func(request, body)

        return handler

    # -- tokens -----------------------------------------------------------------------------

    def _gettoken(self, request: Request, _body: Any) -> dict[str, Any]:
        self.token_requests += 1
        corp_id, secret = request.query.get("corpid"), request.query.get("corpsecret")
        if not corp_id:
            raise Refusal(CORPID_MISSING)
        if corp_id != self.corp_id:
            raise Refusal(INVALID_CORPID)
        if not secret:
            raise Refusal(SECRET_MISSING)
        if secret not in self.apps:
            raise Refusal(INVALID_SECRET)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = _Token(secret, self.clock.monotonic() + self.token_lifetime)
        self._issued.append(token)
        return {"access_token": token, "expires_in": int(self.token_lifetime)}

    def _authorize(self, request: Request) -> _Token:
        value = request.query.get("access_token")
        if not value:
            raise Refusal(TOKEN_MISSING)
        token = self._tokens.get(value)
        if token is None:
            raise Refusal(INVALID_TOKEN)
        if token.expires_at <= self.clock.monotonic():
            raise Refusal(TOKEN_EXPIRED)
        return token

    # -- app group chats ------------------------------------------------------------------

    def _appchat_create(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._authorize(request)
        return {"chatid": self._create_chat(body).chat_id}

    def _create_chat(self, body: dict[str, Any]) -> Chat:
        members = body.get("userlist")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise Refusal(INVALID_PARAM, "userlist must be a list of user ids")
        members = list(dict.fromkeys(members))
        if len(members) < 2:
            raise Refusal(INVALID_PARAM, "a group chat needs at least 2 members")
        if len(members) > MAX_CHAT_MEMBERS:
            raise Refusal(INVALID_PARAM, f"at most {MAX_CHAT_MEMBERS} members")
        owner = body.get("owner") or members[0]
        unknown = [u for u in [*members, owner] if u not in self.users]
        if unknown:
            raise Refusal(INVALID_USER, f"unknown user(s) {'|'.join(unknown)}")
        chat_id = body.get("chatid") or secrets.token_hex(16)
        if not isinstance(chat_id, str) or not _CHAT_ID.fullmatch(chat_id):
            raise Refusal(INVALID_PARAM, "chatid is at most 32 characters of 0-9a-zA-Z")
        if chat_id in self.chats:
            raise Refusal(CHAT_EXISTS)
        name = str(body.get("name") or "")[:CHAT_NAME_CHARS]
        if owner not in members:
            members.append(owner)
        chat = self.chats[chat_id] = Chat(chat_id, name, owner, members)
        return chat

    def _chat(self, chat_id: Any) -> Chat:
        chat = self.chats.get(chat_id) if isinstance(chat_id, str) else None
        if chat is None:
            raise Refusal(CHAT_NOT_FOUND)
        return chat

    def _appchat_get(self, request: Request, _body: Any) -> dict[str, Any]:
        self._authorize(request)
        chat = self._chat(request.query.get("chatid"))
        info = {"chatid": chat.chat_id, "name": chat.name, "owner": chat.owner}
        return {"chat_info": {**info, "userlist": list(chat.members), "chat_type": 0}}

    def _appchat_update(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._authorize(request)
        chat = self._chat(body.get("chatid"))
        add, remove = body.get("add_user_list") or [], body.get("del_user_list") or []
        owner = body.get("owner")
        unknown = [u for u in [*add, *([owner] if owner else [])] if u not in self.users]
        if unknown:
            raise Refusal(INVALID_USER, f"unknown user(s) {'|'.join(unknown)}")
        members = [m for m in dict.fromkeys([*chat.members, *add]) if m not in remove]
        if len(members) < 2:
            raise Refusal(INVALID_PARAM, "a group chat needs at least 2 members")
        if body.get("name"):
            chat.name = str(body["name"])[:CHAT_NAME_CHARS]
        chat.owner = owner or (chat.owner if chat.owner in members else members[0])
        chat.members = members
        return {}

    def _appchat_send(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._authorize(request)
        return self._send_chat(body, via="appchat")

    def _send_chat(self, body: dict[str, Any], *, via: str) -> dict[str, Any]:
        chat = self._chat(body.get("chatid"))
        msgtype = _check_message(body, _CHAT_TYPES)
        self._sent.append(Sent(via, chat.chat_id, msgtype, body, self.clock.monotonic()))
        return {}

    # -- application messages -------------------------------------------------------------

    def _message_send(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        token = self._authorize(request)
        agent = body.get("agentid")
        if isinstance(agent, str) and agent.isdigit():
            agent = int(agent)
        if agent != self.apps[token.secret]:
            raise Refusal(INVALID_AGENTID, f"the token's application is {self.apps[token.secret]}")
        msgtype = _check_message(body, _APP_TYPES)
        users, parties, tags = (_ids(body.get(f)) for f in ("touser", "toparty", "totag"))
        everyone = "@all" in users
        known_users = [u for u in users if u in self.users]
        valid = {
            "users": tuple(sorted(self.users) if everyone else known_users),
            "parties": tuple(p for p in parties if p in self.parties),
            "tags": tuple(t for t in tags if t in self.tags),
        }
        invalid = {
            "invaliduser": [] if everyone else [u for u in users if u not in self.users],
            "invalidparty": [p for p in parties if p not in self.parties],
            "invalidtag": [t for t in tags if t not in self.tags],
        }
        if not any(valid.values()):
            raise Refusal(ALL_INVALID)
        now = self.clock.monotonic()
        answer: dict[str, Any] = {k: "|".join(v) for k, v in invalid.items() if v}
        if body.get("enable_duplicate_check") in (1, "1", True):
            interval = float(body.get("duplicate_check_interval") or DUPLICATE_INTERVAL)
            interval = min(max(interval, 0.0), MAX_DUPLICATE_INTERVAL)
            digest = _digest(body)
            seen = self._recent_app.get(digest)
            if seen is not None and now - seen[0] < interval:
                self.duplicates_dropped += 1  # dropped silently, like the provider
                return {**answer, "msgid": seen[1]}
        msgid = secrets.token_urlsafe(24)
        if body.get("enable_duplicate_check") in (1, "1", True):
            self._recent_app[_digest(body)] = (now, msgid)
        self._sent.append(Sent("app", f"app:{agent}", msgtype, body, now, msgid, valid))
        return {**answer, "msgid": msgid}

    # -- group robots ---------------------------------------------------------------------

    def _webhook_send(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        key = request.query.get("key")
        if not key or key not in self.robot_keys:
            raise Refusal(INVALID_KEY)
        if key in self.disabled_robots:
            raise Refusal(ROBOT_DISABLED)
        msgtype = _check_message(body, _ROBOT_TYPES)
        if msgtype == "text":
            for field in ("mentioned_list", "mentioned_mobile_list"):
                value = body["text"].get(field, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise Refusal(INVALID_PARAM, f"{field} must be a list of strings")
        now = self.clock.monotonic()
        if not self.windows.admit(key, now, [(self.robot_rate, self.robot_window)]):
            raise Refusal(FREQ_LIMIT, f"a robot takes {self.robot_rate} messages a minute")
        self._sent.append(Sent("robot", key, msgtype, body, now))
        return {}

    # -- the API gateway ------------------------------------------------------------------

    def _gateway(self, provider: str) -> Callable[[Request], dict[str, Any]]:
        def handler(request: Request) -> dict[str, Any]:
            body = self.json_object(request, BAD_JSON)
            auth = self._gateway_auth(request, body)
            if auth:
                raise Refusal(GATEWAY_AUTH_FAILED, auth)
            payload = {k: v for k, v in body.items() if k not in _GATEWAY_FIELDS}
            if provider == "appchat/create":
                return {"chatid": self._create_chat(payload).chat_id}
            return self._send_chat(payload, via="gateway")

        return handler

    def _gateway_auth(self, request: Request, body: dict[str, Any]) -> str | None:
        """``None`` when the app code, secret and user name check out, else why not."""
        fields: dict[str, Any] = {}
        raw = request.header("x-bkapi-authorization")
        if raw:
            try:
                fields = json.loads(raw)
            except ValueError:
                return "X-Bkapi-Authorization is not a JSON object"
            if not isinstance(fields, dict):
                return "X-Bkapi-Authorization is not a JSON object"
        for name in _GATEWAY_FIELDS:  # older gateways: parameters or body fields
            fields.setdefault(name, request.query.get(name) or body.get(name))
        code, secret_ = fields.get("bk_app_code"), fields.get("bk_app_secret")
        if not code or not secret_:
            return "app authentication failed: bk_app_code and bk_app_secret are required"
        if self.gateway_apps.get(code) != secret_:
            return f"app authentication failed: app_code={code} or its secret is wrong"
        if not fields.get("bk_username"):
            return "user authentication failed: bk_username is required"
        return None


def _gateway_envelope(code: int, message: str, fields: Mapping[str, Any]) -> Response:
    """The API gateway's own envelope around WeCom's answer, and its request id."""
    request_id = uuid.uuid4().hex
    data: dict[str, Any] | None = {"errcode": code, "errmsg": message, **fields}
    if code == OK:
        message = "OK"
    elif code == GATEWAY_AUTH_FAILED:
        data = None  # the gateway refused before WeCom saw the call
    envelope = {
        "result": code == OK,
        "code": code,
        "message": message,
        "data": data,
        "request_id": request_id,
    }
    return Response.from_json(envelope, headers={"X-Bkapi-Request-Id": request_id})


def _digest(body: Mapping[str, Any]) -> str:
    ignore = {"enable_duplicate_check", "duplicate_check_interval"}
    canonical = json.dumps(
        {k: v for k, v in body.items() if k not in ignore}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_message(body: Mapping[str, Any], allowed: frozenset[str]) -> str:
    """The message type after checking its body, or a provider error."""
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str) or msgtype not in allowed:
        raise Refusal(INVALID_MSGTYPE, f"msgtype {msgtype!r} is not supported here")
    inner = body.get(msgtype)
    if not isinstance(inner, Mapping):
        raise Refusal(INVALID_PARAM, f"missing the {msgtype!r} object")
    limit = {"text": TEXT_LIMIT, "markdown": MARKDOWN_LIMIT, "markdown_v2": MARKDOWN_LIMIT}
    if msgtype in limit:
        content = inner.get("content")
        if not isinstance(content, str) or not content:
            raise Refusal(EMPTY_CONTENT)
        size = len(content.encode("utf-8"))
        if size > limit[msgtype]:
            raise Refusal(INVALID_PARAM, f"content size {size} exceeds {limit[msgtype]} bytes")
    elif msgtype == "news":
        articles = inner.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            raise Refusal(INVALID_PARAM, "news takes 1 to 8 articles")
        for article in articles:
            if not isinstance(article, Mapping) or not article.get("title"):
                raise Refusal(INVALID_PARAM, "every article needs a title")
            if len(str(article["title"]).encode()) > NEWS_TITLE_LIMIT:
                raise Refusal(INVALID_PARAM, f"article title over {NEWS_TITLE_LIMIT} bytes")
            if len(str(article.get("description", "")).encode()) > NEWS_DESCRIPTION_LIMIT:
                raise Refusal(INVALID_PARAM, f"description over {NEWS_DESCRIPTION_LIMIT} bytes")
    elif msgtype == "textcard":
        if not all(inner.get(f) for f in ("title", "description", "url")):
            raise Refusal(INVALID_PARAM, "textcard needs title, description and url")
    elif msgtype == "image" and "base64" in inner:
        try:
            raw = base64.b64decode(str(inner["base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(INVALID_PARAM, "image base64 is invalid") from None
        if hashlib.md5(raw).hexdigest() != inner.get("md5"):  # noqa: S324 - provider's choice
            raise Refusal(INVALID_PARAM, "image md5 does not match")
    elif msgtype in ("image", "voice", "video", "file", "mpnews") and not inner.get("media_id"):
        raise Refusal(INVALID_PARAM, f"{msgtype} needs media_id")
    return msgtype


def _served(wecom: FakeWeCom) -> Served:
    key = next(iter(sorted(wecom.robot_keys)))
    preface = (
        '# The fake also answers app channels (kind = "wework") with\n'
        f"# corp_id = {json.dumps(wecom.corp_id)}, secret = {json.dumps(wecom.secret)},\n"
        f"# agent_id = {wecom.agent_id} and the same api_root.\n"
    )
    options = {"kind": "wework-robot", "key": key, "api_root": wecom.api_root}
    return Served.for_channel(wecom.api_root, "wework", options, preface=preface)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake WeCom until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_wework.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_wework.testing", FakeWeCom, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
