"""``[server]``: where ``notifier serve`` listens, who may post to it, how much it reads.

Tokens and passwords are :class:`~notifier.redact.Secret` values from the moment they are
read (literal strings or ``{ env = "VAR" }``), so no repr, log line or error shows them.
Listening beyond the loopback interface without any credential is refused unless
``allow_anonymous = true`` says it is meant.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs

from notifier.errors import ConfigError, ConfigIssue
from notifier.kinds import Option
from notifier.redact import Secret
from notifier.values import INVALID, Issues, is_env_ref, resolve

__all__ = ["DEFAULT_LISTEN", "MAX_BODY_BYTES", "ServerSettings", "parse_listen"]

DEFAULT_LISTEN = "127.0.0.1:9095"
MAX_BODY_BYTES = 1024 * 1024
# A body limit larger than this would let one request hold most of a small host's memory.
_BODY_CEILING = 64 * 1024 * 1024
KEYS = ("listen", "tokens", "users", "max_body_bytes", "allow_anonymous")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a pair; ValueError naming the problem."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected a port number 0-65535 after the colon, got {port!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


@attrs.frozen
class ServerSettings:
    """A validated ``[server]`` table."""

    listen: str = DEFAULT_LISTEN
    tokens: tuple[Secret, ...] = ()
    users: Mapping[str, Secret] = attrs.field(factory=dict)
    max_body_bytes: int = MAX_BODY_BYTES
    allow_anonymous: bool = False

    @property
    def anonymous(self) -> bool:
        return not self.tokens and not self.users

    @property
    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    def problem(self) -> str | None:
        """Why this listen address and these credentials may not go together, if so."""
        host, _ = self.address
        if self.anonymous and not self.allow_anonymous and not is_loopback(host):
            return (
                f"listening on {self.listen} (beyond this machine) needs tokens or users; "
                "set allow_anonymous = true to accept anyone's alerts"
            )
        return None

    def listening_on(self, listen: str) -> ServerSettings:
        """These settings with another address (``--listen``), held to the same rule.

        :raises ConfigError: the address is malformed, or needs credentials it lacks.
        """
        changed = attrs.evolve(self, listen=listen)
        try:
            problem = changed.problem()
        except ValueError as exc:
            problem = str(exc)
        if problem:
            raise ConfigError([ConfigIssue("--listen", "server.listen", problem)])
        return changed

    @classmethod
    def from_table(
        cls, table: Any, issues: Issues, env: Mapping[str, str] | None = None
    ) -> ServerSettings:
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            issues.add("server", "a table ([server])")
            return cls()
        for key in table:
            if key not in KEYS:
                issues.add(f"server.{key}", f"no such key; expected one of {', '.join(KEYS)}")
        values: dict[str, Any] = {}
        listen = table.get("listen", DEFAULT_LISTEN)
        if not isinstance(listen, str):
            issues.add("server.listen", "a string HOST:PORT")
        else:
            try:
                parse_listen(listen)
                values["listen"] = listen
            except ValueError as exc:
                issues.add("server.listen", str(exc))
        values["tokens"] = _tokens(table.get("tokens", []), issues, env)
        values["users"] = _users(table.get("users", {}), issues, env)
        size = table.get("max_body_bytes", MAX_BODY_BYTES)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _BODY_CEILING:
            issues.add("server.max_body_bytes", f"a whole number of bytes, 1 to {_BODY_CEILING}")
        else:
            values["max_body_bytes"] = size
        anonymous = table.get("allow_anonymous", False)
        if not isinstance(anonymous, bool):
            issues.add("server.allow_anonymous", "true or false")
        else:
            values["allow_anonymous"] = anonymous
        settings = cls(**values)
        if "listen" in values:
            problem = settings.problem()
            if problem:
                issues.add("server", problem)
        return settings


def _secret(raw: Any, path: str, issues: Issues, env: Mapping[str, str] | None) -> Secret | None:
    if is_env_ref(raw):
        raw = resolve(raw, Option(path, secret=True), path, issues, env)
        if raw is INVALID:
            return None
    if not isinstance(raw, str) or not raw:
        issues.add(path, 'a non-empty string or { env = "VAR" }')
        return None
    return Secret(raw)


def _tokens(raw: Any, issues: Issues, env: Mapping[str, str] | None) -> tuple[Secret, ...]:
    if not isinstance(raw, list):
        issues.add("server.tokens", 'a list of tokens (strings or { env = "VAR" })')
        return ()
    found = (_secret(item, f"server.tokens[{i}]", issues, env) for i, item in enumerate(raw))
    return tuple(s for s in found if s is not None)


def _users(raw: Any, issues: Issues, env: Mapping[str, str] | None) -> dict[str, Secret]:
    if not isinstance(raw, Mapping):
        issues.add("server.users", "a table of user name = password")
        return {}
    users = {}
    for name, value in raw.items():
        if ":" in name or not name:
            issues.add(f"server.users.{name}", "a user name without a colon")
            continue
        secret = _secret(value, f"server.users.{name}", issues, env)
        if secret is not None:
            users[name] = secret
    return users
