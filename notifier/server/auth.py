"""Credentials for ``notifier serve``: bearer tokens and basic-auth users.

Every comparison is :func:`hmac.compare_digest` over every configured credential, with
no early exit, so the time an answer takes says nothing about how much of a token was
right or which user names exist.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from notifier.redact import Secret

__all__ = ["Credentials"]

_DUMMY = b"\x00" * 32


class Credentials:
    def __init__(self, tokens: tuple[Secret, ...], users: Mapping[str, Secret]) -> None:
        self._tokens = tuple(t.reveal().encode() for t in tokens)
        self._users = {name.encode(): p.reveal().encode() for name, p in users.items()}

    @property
    def required(self) -> bool:
        return bool(self._tokens or self._users)

    def __repr__(self) -> str:
        return f"Credentials({len(self._tokens)} token(s), {len(self._users)} user(s))"

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries a valid credential."""
        if not self.required:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._token(value.strip().encode("latin-1", "replace"))
        if scheme == "basic":
            return self._basic(value.strip())
        return False

    def _token(self, offered: bytes) -> bool:
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(offered, token)
        return ok

    def _basic(self, value: str) -> bool:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        name, sep, password = decoded.partition(b":")
        if not sep:
            return False
        ok = False
        for user, expected in self._users.items():
            ok |= hmac.compare_digest(name, user) & hmac.compare_digest(password, expected)
        # Unknown names cost the same as known ones.
        hmac.compare_digest(password, _DUMMY)
        return ok
