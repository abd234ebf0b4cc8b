"""Feishu's custom-bot signature, added to every request body.

With signature verification on, the JSON body carries ``timestamp`` (seconds, as a
string) and ``sign``: the base64 HMAC-SHA256 whose **key** is ``"<timestamp>\\n<secret>"``
and whose message is empty (unlike DingTalk, which keys by the secret and signs the
string). Feishu refuses a timestamp more than an hour from its clock, so the signature is
computed on every attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import requests
from requests.auth import AuthBase

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.http import credential_id
from notifier.redact import Secret

__all__ = ["SIGNATURE_OVERHEAD", "BodySignature", "signature"]

#: bytes the two fields add to a JSON body, at most (``, "timestamp": "…", "sign": "…"``)
SIGNATURE_OVERHEAD = 96


def signature(secret: str, timestamp: int) -> str:
    """The ``sign`` for ``timestamp`` (seconds)."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


class BodySignature(AuthBase):
    """Merges ``timestamp`` and ``sign`` into the request's JSON object body."""

    def __init__(self, secret: Secret, clock: Clock = SYSTEM_CLOCK) -> None:
        self.secret = secret
        self.clock = clock

    @property
    def identity(self) -> str:
        return credential_id("feishu-sign", self.secret)

    def __repr__(self) -> str:
        return f"BodySignature(identity={self.identity!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = request.body or b"{}"
        payload = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        timestamp = int(self.clock.time())
        payload["timestamp"] = str(timestamp)
        payload["sign"] = signature(self.secret.reveal(), timestamp)
        request.body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request.prepare_content_length(request.body)
        return request
