"""A real SMTP server in the test process, for testing ``email`` channel configurations.

:class:`FakeSMTP` runs :mod:`aiosmtpd` on 127.0.0.1 (an ephemeral port) in a thread. It
checks ``AUTH`` against its username and password, speaks plain SMTP, STARTTLS or
implicit TLS with a bundled test certificate (trust :attr:`FakeSMTP.ca_file`), records
every accepted message, counts connections and logins, and can be told to answer a
step with a temporary or permanent error, to refuse given recipients, or to hang up on
every client as a server does with idle sessions::

    from notifier_email.testing import FakeSMTP

    with FakeSMTP(security="starttls") as smtp:
        options = smtp.channel_options(to=["ops@example.com"])  # a [channels.x] table
        ...                                                     # send through the channel
        assert smtp.messages[0].subject.startswith("[FIRING]")
        smtp.fail_next(451, "4.7.1 Try again later", step="rcpt")
        smtp.refuse("nobody@example.com")                      # 550 5.1.1 for this one
        smtp.drop_connections()                                # an idle timeout

Needs ``aiosmtpd`` (``pip install aiosmtpd``). The bundled certificate and key are for
tests only and are not secret.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from collections.abc import Sequence
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import attrs
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notifier.testing.serving import Served, serve_from_shell
from notifier_email.smtpd import EphemeralController

__all__ = ["CA_FILE", "FakeSMTP", "ReceivedMail"]

_CERTS = Path(__file__).with_name("certs")
#: The CA that signed the fake server's certificate (for 127.0.0.1 and localhost).
CA_FILE = str(_CERTS / "fake-ca.pem")
_SERVER_PEM = str(_CERTS / "fake-server.pem")
Security = Literal["plain", "starttls", "tls"]
Step = Literal["mail", "rcpt", "data"]


@attrs.frozen(eq=False)
class ReceivedMail:
    """One message the server accepted."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    connection: int
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        """The decoded ``text/<subtype>`` part (``"plain"`` or ``"html"``)."""
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_subtype() != subtype:
            raise LookupError(f"no text/{subtype} part")
        return str(body.get_content())


@attrs.frozen
class _Fault:
    step: str
    reply: str


class FakeSMTP:
    """An SMTP server for tests; use as a context manager. Thread-safe.

    :param security: ``"plain"``, ``"starttls"`` (AUTH only after STARTTLS, like real
        submission servers) or ``"tls"`` (implicit TLS from the first byte).
    :param username: the only login accepted; ``None`` turns AUTH off.
    :param size_limit: advertised ``SIZE``; larger messages are refused with 552.
    """

    def __init__(
        self,
        *,
        security: Security = "plain",
        username: str | None = "alerts",
        password: str | None = None,
        size_limit: int | None = 10 * 1024 * 1024,
    ) -> None:
        self.security = security
        self.username = username
        self.password = password if password is not None else "pw-" + secrets.token_hex(8)
        self.size_limit = size_limit
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._stalls: list[tuple[str, float]] = []
        self._refused: dict[str, str] = {}
        self._sessions: list[SMTP] = []
        self.messages: list[ReceivedMail] = []
        self.connections = 0
        self.logins = 0
        self.failed_logins = 0
        self.noops = 0
        self._controller: EphemeralController | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(_SERVER_PEM)
        self._controller = EphemeralController(
            self,
            hostname="127.0.0.1",
            port=0,
            ssl_context=context if self.security == "tls" else None,
            tls_context=context if self.security == "starttls" else None,
            require_starttls=self.security == "starttls",
            # Real servers refuse AUTH before TLS; in plain mode tests allow it.
            auth_require_tls=self.security == "starttls",
            auth_required=False,
            authenticator=self._authenticate if self.username else None,
            data_size_limit=self.size_limit,
        )
        self._controller.start()
        self.reset()  # forget the controller's own readiness probe
        return self

    def stop(self) -> None:
        """Hang up on every client, then stop listening: later connects are refused."""
        if self._controller is not None:
            self.drop_connections()  # else clients' pooled connections would hang open
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("server not started")
        return self._controller.port

    @property
    def ca_file(self) -> str:
        return CA_FILE

    def channel_options(self, **overrides: Any) -> dict[str, Any]:
        """A ``[channels.<name>]`` table for an ``email`` channel pointed at this server."""
        options: dict[str, Any] = {
            "kind": "email",
            "host": self.host,
            "port": self.port,
            "from": "Alerts <alerts@example.com>",
            "to": ["ops@example.com"],
        }
        if self.username:
            options |= {"username": self.username, "password": self.password}
        if self.security != "plain":
            options |= {self.security: True, "ca_file": CA_FILE}
        return options | overrides

    def channel_toml(self, name: str = "mail", **overrides: Any) -> str:
        """:meth:`channel_options` as a ``[channels.<name>]`` TOML table, for config files."""
        lines = [f"[channels.{name}]"]
        for key, value in self.channel_options(**overrides).items():
            lines.append(f"{key} = {_toml(value)}")
        return "\n".join(lines) + "\n"

    # -- scripting ------------------------------------------------------------------------

    def fail_next(
        self, code: int = 451, text: str = "4.3.0 Try again later", *, step: Step = "data",
        count: int = 1,
    ) -> None:  # fmt: skip
        """Answer the next ``count`` ``MAIL``, ``RCPT`` or end-of-``DATA`` with ``code``."""
        with self._lock:
            self._faults += [_Fault(step, f"{code} {text}")] * count

    def stall_next(self, seconds: float, *, step: Step = "mail", count: int = 1) -> None:
        """Hold the next ``count`` ``MAIL``, ``RCPT`` or end-of-``DATA`` for ``seconds``
        before answering, like a server that stopped responding (:meth:`stop` ends it)."""
        with self._lock:
            self._stalls += [(step, seconds)] * count

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 No such user") -> None:
        """Refuse ``RCPT TO:<address>`` with ``code`` from now on."""
        with self._lock:
            self._refused[address.lower()] = f"{code} {text}"

    def drop_connections(self) -> None:
        """Hang up on every connected client, as after an idle timeout."""
        assert self._controller is not None
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            if session.transport is not None:
                self._controller.loop.call_soon_threadsafe(session.transport.close)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self._faults.clear()
            self._stalls.clear()
            self.connections = self.logins = self.failed_logins = self.noops = 0

    # -- events from the server (called on its event loop thread) ------------------------

    def on_connect(self, session: SMTP) -> int:
        """The server accepted a connection; returns its number (1, 2, ...)."""
        with self._lock:
            self.connections += 1
            self._sessions.append(session)
            return self.connections

    def on_stall(self, step: str) -> float:
        """Seconds to hold ``step`` before answering (0: answer at once)."""
        with self._lock:
            for index, (stalled, seconds) in enumerate(self._stalls):
                if stalled == step:
                    del self._stalls[index]
                    return seconds
        return 0.0

    def on_step(self, step: str) -> str | None:
        """The reply scripted for ``step`` (``mail``, ``rcpt``, ``data``), if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.step == step:
                    return self._faults.pop(index).reply
        return None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and secrets.compare_digest(data.password, self.password.encode())
        )
        with self._lock:
            if ok:
                self.logins += 1
            else:
                self.failed_logins += 1
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def on_rcpt(self, address: str) -> str | None:
        """The refusal for ``address``, else a scripted ``rcpt`` reply, if any."""
        with self._lock:
            refusal = self._refused.get(address.lower())
        return refusal or self.on_step("rcpt")

    def on_message(
        self, sender: str, recipients: tuple[str, ...], data: bytes, connection: int,
        login: str | None,
    ) -> None:  # fmt: skip
        """The server accepted a message."""
        mail = ReceivedMail(sender, recipients, data, connection, login)
        with self._lock:
            self.messages.append(mail)

    def on_noop(self) -> None:
        with self._lock:
            self.noops += 1


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _served(smtp: FakeSMTP) -> Served:
    return Served(f"smtp://{smtp.host}:{smtp.port}", "mail", smtp.channel_toml("mail"))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake SMTP server until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_email.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_email.testing", FakeSMTP, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
