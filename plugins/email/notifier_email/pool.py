"""A small pool of SMTP connections per channel, so a burst of alerts shares a few
connections instead of paying connect, TLS and AUTH for every mail.

At most ``size`` connections are open at once (mail servers limit concurrent sessions
per client). A connection goes back to the pool after a clean transaction; one that
broke, or that has carried :data:`MAX_MESSAGES`, is closed. A connection idle longer
than :data:`NOOP_AFTER` is checked with ``NOOP`` before use and replaced if the server
has hung up; one idle longer than :data:`MAX_IDLE` is replaced without asking, since
servers drop idle sessions after a few minutes. Idle time is read from the injected
clock, so tests move a :class:`~notifier.clock.FakeClock` instead of waiting.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading
from collections.abc import Callable, Iterator

import attrs

from notifier import deadline
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.errors import TransportError

NOOP_AFTER = 5.0
MAX_IDLE = 60.0
MAX_MESSAGES = 100
QUIT_TIMEOUT = 1.0


@attrs.define(eq=False)
class Pooled:
    """One connection on loan. Set ``broken`` when it must not be used again."""

    conn: smtplib.SMTP
    last_used: float
    messages: int = 0
    reused: bool = False
    broken: bool = False


class ConnectionPool:
    """Thread-safe; each connection is used by one delivery at a time.

    :param connect: opens a ready (secured, authenticated) connection or raises.
    :param size: connections open at most; a delivery waits ``wait`` seconds for one.
    """

    def __init__(
        self,
        connect: Callable[[], smtplib.SMTP],
        *,
        size: int = 2,
        wait: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        label: str = "email",
    ) -> None:
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Pooled] = []
        self._closed = False
        self.size, self.wait, self.clock, self.label = size, wait, clock, label
        self.opened = 0  # connections opened over the pool's life, for tests and metrics

    @contextlib.contextmanager
    def connection(self) -> Iterator[Pooled]:
        """Lend a connection; it goes back to the pool (or is closed) afterwards."""
        wait = deadline.cap(self.wait)
        if not self._slots.acquire(timeout=wait):
            raise TransportError(
                f"{self.label}: all {self.size} SMTP connections stayed busy for {wait:g}s",
                sent=False,
            )
        try:
            pooled = self._checkout()
            try:
                yield pooled
            except BaseException:
                pooled.broken = pooled.broken or not _reset(pooled.conn)
                raise
            finally:
                self._checkin(pooled)
        finally:
            self._slots.release()

    def _checkout(self) -> Pooled:
        while True:
            with self._lock:
                if self._closed:
                    raise TransportError(f"{self.label}: the channel is closed", sent=False)
                pooled = self._idle.pop() if self._idle else None
            if pooled is None:
                break
            idle = self.clock.monotonic() - pooled.last_used
            if idle <= NOOP_AFTER or (idle <= MAX_IDLE and _alive(pooled.conn)):
                pooled.reused = True
                return pooled
            _quit(pooled.conn)  # stale: the server has hung up or soon will
        conn = self._connect()
        with self._lock:
            self.opened += 1
        return Pooled(conn, self.clock.monotonic())

    def _checkin(self, pooled: Pooled) -> None:
        pooled.last_used = self.clock.monotonic()
        keep = not pooled.broken and pooled.messages < MAX_MESSAGES
        with self._lock:
            if keep and not self._closed:
                self._idle.append(pooled)
                return
        _quit(pooled.conn)

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        """Close idle connections now; connections on loan close when returned."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for pooled in idle:
            _quit(pooled.conn)


def _alive(conn: smtplib.SMTP) -> bool:
    try:
        return conn.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _reset(conn: smtplib.SMTP) -> bool:
    """``RSET`` after a failed transaction; false if the connection is unusable."""
    try:
        return conn.rset()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _quit(conn: smtplib.SMTP) -> None:
    # A polite QUIT, but never a long wait on a server that stopped answering.
    try:
        if conn.sock is not None:
            conn.sock.settimeout(deadline.cap(QUIT_TIMEOUT))
        conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        conn.close()
