"""A bound on each request's total time, not only on each socket read.

Socket timeouts bound every wait for data, not their sum: a server that answers one byte
a second never trips a 10-second read timeout and can hold a request, and the thread
running it, for hours. So every attempt runs under an :class:`AttemptLimit`; the
connection registers its socket with it when it starts waiting for the answer, and one
daemon thread shuts that socket down when the attempt's time is up. The blocked read
then ends at once (with an end-of-stream error the client reports as a timeout), whatever
phase it was in: status line, headers or body.

The watcher is one thread for the whole process, sleeping until the earliest end, so an
attempt costs a heap push rather than a timer thread; it is a daemon, so it never keeps
a finished process alive.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import BaseHTTPResponse

__all__ = ["AttemptLimit", "LimitedHTTPConnectionPool", "LimitedHTTPSConnectionPool", "limited"]

_CURRENT: ContextVar[AttemptLimit | None] = ContextVar("notifier_attempt_limit", default=None)


class AttemptLimit:
    """One attempt's end (a ``time.monotonic()`` value) and the socket it waits on.

    :param seconds: how long the attempt may take in all.
    """

    __slots__ = ("_done", "_sock", "ends", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        #: the time ran out and the socket was shut down: the error is a timeout
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None

    def attach(self, sock: socket.socket | None) -> None:
        """Watch ``sock`` until the attempt is done; shut it now if time is already up."""
        if sock is None:
            return
        with _WATCHER.lock:
            if self._done:
                return
            self._sock = sock
            if time.monotonic() >= self.ends:
                self._expire()
                return
        _WATCHER.add(self)

    def finish(self) -> None:
        """The attempt is over: never touch its socket again (it may be back in the pool)."""
        with _WATCHER.lock:
            self._done = True
            self._sock = None

    def _expire(self) -> None:
        """Shut the socket down; the caller holds the watcher's lock."""
        sock, self._sock = self._sock, None
        if self._done or sock is None:
            return
        self.expired = True
        # The plain socket's shutdown, also for a TLS socket: SSLSocket.shutdown would drop
        # its TLS state under the thread still reading from it. Already closed: the read
        # has ended anyway.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watcher:
    """The one thread that ends attempts whose time is up."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._heap: list[tuple[float, int, AttemptLimit]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, limit: AttemptLimit) -> None:
        with self.lock:
            if limit._done:
                return
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (limit.ends, next(self._order), limit))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="notifier-attempt-limits", daemon=True
                )
                self._thread.start()
            elif earliest is None or limit.ends < earliest:
                self._wake.notify()

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2]._done):
                    limit = heapq.heappop(self._heap)[2]
                    limit._expire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)

    def _after_fork(self) -> None:
        # The child has no watcher thread; the next attempt starts one.
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._heap = []
        self._thread = None


_WATCHER = _Watcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHER._after_fork)


@contextmanager
def limited(seconds: float) -> Iterator[AttemptLimit]:
    """Run one attempt (request, answer and body) within ``seconds`` in all."""
    limit = AttemptLimit(seconds)
    token = _CURRENT.set(limit)
    try:
        yield limit
    finally:
        _CURRENT.reset(token)
        limit.finish()


def _attach_current(sock: socket.socket | None) -> None:
    limit = _CURRENT.get()
    if limit is not None:
        limit.attach(sock)


class _LimitedHTTPConnection(HTTPConnection):
    def getresponse(self) -> BaseHTTPResponse:  # type: ignore[override]
        _attach_current(self.sock)
        return super().getresponse()


class _LimitedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> BaseHTTPResponse:  # type: ignore[override]
        _attach_current(self.sock)
        return super().getresponse()


class LimitedHTTPConnectionPool(HTTPConnectionPool):
    """A pool whose connections keep to the running :func:`limited` attempt."""

    ConnectionCls = _LimitedHTTPConnection


class LimitedHTTPSConnectionPool(HTTPSConnectionPool):
    """A TLS pool whose connections keep to the running :func:`limited` attempt."""

    ConnectionCls = _LimitedHTTPSConnection


#: for ``PoolManager.pool_classes_by_scheme``
POOL_CLASSES = {"http": LimitedHTTPConnectionPool, "https": LimitedHTTPSConnectionPool}
