"""The aiosmtpd side of :class:`~notifier_email.testing.FakeSMTP`.

A handler that asks the fake how to answer each step and records what it accepted, and a
controller that listens on an ephemeral port and counts connections. Kept apart so the
fake's public face (:mod:`notifier_email.testing`) reads without the plumbing.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, LoginPassword, Session

if TYPE_CHECKING:
    from notifier_email.testing import FakeSMTP


class Handler:
    """aiosmtpd handler hooks, each answered by the fake's ``on_*`` method."""

    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake

    async def _stall(self, step: str) -> None:
        seconds = self.fake.on_stall(step)
        if seconds:
            await asyncio.sleep(seconds)  # this session only; the others go on

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._stall("mail")
        fault = self.fake.on_step("mail")
        if fault:
            return fault
        envelope.mail_from, envelope.mail_options = address, list(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._stall("rcpt")
        refusal = self.fake.on_rcpt(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._stall("data")
        fault = self.fake.on_step("data")
        if fault:
            return fault
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        data = envelope.original_content or b""
        number = getattr(server, "connection_number", 0)
        self.fake.on_message(
            envelope.mail_from or "", tuple(envelope.rcpt_tos), data, number, login
        )
        return f"250 2.0.0 Ok: queued as {secrets.token_hex(5).upper()}"

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        self.fake.on_noop()
        return "250 OK"


class QuietSession(Session):
    # aiosmtpd 1.4 sets this deprecated attribute itself on every login and logs a
    # warning each time; a plain attribute keeps test output quiet.
    login_data = None


class QuietSMTP(SMTP):
    connection_number = 0  # the fake's number for this connection

    def _create_session(self) -> Session:
        return QuietSession(self.loop)


class EphemeralController(Controller):
    """aiosmtpd's controller on an ephemeral port, counting connections."""

    def __init__(self, fake: FakeSMTP, **kwargs: Any) -> None:
        self.fake = fake
        super().__init__(Handler(fake), **kwargs)

    def factory(self) -> SMTP:
        server = QuietSMTP(self.handler, **self.SMTP_kwargs)
        server.connection_number = self.fake.on_connect(server)
        return server

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before the readiness probe connects.
        # aiosmtpd types its server as an AbstractServer; loop.create_server made it.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # unannotated in aiosmtpd
