"""A small errcode-style fake provider on LocalServer, shared by the HTTP tests."""

from __future__ import annotations

import itertools
import threading

from notifier.http import (
    Endpoint,
    ErrorCodes,
    errcode_envelope,
)
from notifier.testing import LocalServer, Request, Response

CORP_SECRET = "corp-secret-Zq81xT"  # long and odd enough that no other text contains it
CODES = ErrorCodes(
    token_invalid=(40014, 42001), busy=(-1, 45033), rate_limited=(45009,), auth=(40001,)
)
ENVELOPE = errcode_envelope(CODES)

GETTOKEN = Endpoint("gettoken", "GET", "gettoken", parse=ENVELOPE, authenticated=False)
SEND = Endpoint("send", "POST", "message/send", parse=ENVELOPE)
GET_CHAT = Endpoint("get_chat", "GET", "appchat/get", parse=ENVELOPE, cache_ttl=30.0)


class FakeProvider(LocalServer):
    """Tokens from ``/gettoken``; ``/message/send`` and ``/appchat/get`` check them."""

    def setup(self) -> None:
        self._serial = itertools.count(1)
        self._valid: set[str] = set()
        self._valid_lock = threading.Lock()
        self.reject_all_tokens = False
        self.answers: list[dict] = []  # scripted envelopes for /message/send, used first
        self.route("GET", "/gettoken", self.gettoken)
        self.route("POST", "/message/send", self.send)
        self.route("GET", "/appchat/get", self.get_chat)

    def gettoken(self, request: Request) -> Response:
        if request.query.get("corpsecret") != CORP_SECRET:
            return Response.from_json({"errcode": 40001, "errmsg": "invalid credential"})
        token = f"tok{next(self._serial)}-{'x' * 24}"
        with self._valid_lock:
            self._valid.add(token)
        return Response.from_json({"errcode": 0, "access_token": token, "expires_in": 7200})

    def expire_tokens(self) -> None:
        with self._valid_lock:
            self._valid.clear()

    def _token_ok(self, request: Request) -> bool:
        with self._valid_lock:
            return not self.reject_all_tokens and request.query.get("access_token") in self._valid

    def send(self, request: Request) -> Response:
        if not self._token_ok(request):
            return Response.from_json({"errcode": 42001, "errmsg": "access_token expired"})
        if self.answers:
            return Response.from_json(self.answers.pop(0))
        return Response.from_json({"errcode": 0, "errmsg": "ok", "msgid": f"m{len(self.requests)}"})

    def get_chat(self, request: Request) -> Response:
        if not self._token_ok(request):
            return Response.from_json({"errcode": 40014, "errmsg": "invalid access_token"})
        chat = request.query.get("chatid", "")
        return Response.from_json(
            {"errcode": 0, "errmsg": "ok", "chat_info": {"chatid": chat, "name": "名字"}}
        )
