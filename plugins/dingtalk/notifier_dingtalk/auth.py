"""How a DingTalk robot request proves who sends it.

The robot's ``access_token`` goes in the query string. A robot with signing ("加签")
turned on also wants, on every request, a millisecond ``timestamp`` and a ``sign``: the
base64 HMAC-SHA256 of ``"<timestamp>\\n<secret>"`` keyed by the secret, URL-encoded in
the query. DingTalk refuses a timestamp more than an hour away from its own clock, so
the signature is computed per attempt, never cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import requests
from requests.auth import AuthBase

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.http import credential_id
from notifier.redact import Secret

__all__ = ["RobotAuth", "signature"]


def signature(secret: str, timestamp_ms: int) -> str:
    """The base64 ``sign`` for ``timestamp_ms`` (before URL-encoding)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class RobotAuth(AuthBase):
    """Adds ``access_token`` and, with a signing secret, ``timestamp`` and ``sign``.

    Both credentials are :class:`~notifier.redact.Secret` values, revealed only while a
    request is prepared; ``requests`` URL-encodes the query, base64 ``+/=`` included.
    """

    def __init__(
        self, access_token: Secret, secret: Secret | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.access_token = access_token
        self.secret = secret
        self.clock = clock

    @property
    def identity(self) -> str:
        return credential_id("dingtalk", self.access_token)

    def __repr__(self) -> str:
        return f"RobotAuth(identity={self.identity!r}, signed={self.secret is not None})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        params = {"access_token": self.access_token.reveal()}
        if self.secret is not None:
            timestamp = int(self.clock.time() * 1000)
            params["timestamp"] = str(timestamp)
            params["sign"] = signature(self.secret.reveal(), timestamp)
        request.prepare_url(request.url, params)
        return request
