"""Group commit: the records that ride along with the next write transaction.

Recording a successful send was the second of a dispatch's two write transactions, and
it may wait: the delivery was written durably before it was sent, and until its outcome
is recorded it stays in flight under this process's channel lease, which is exactly what a
crash during the send leaves behind. So the record is kept in memory and written at the
start of the next write transaction (in a stream of dispatches, the next dispatch's),
or by a background thread once it has waited :data:`FLUSH_AFTER` seconds, or before the
file is read or closed, or when the interpreter exits. A stream of dispatches then costs
one write transaction each.

A crash before the record is written leaves the delivery in flight; recovery sends it
again under the same idempotency key. That is at most one delivery per channel claim,
as a crash in the middle of a send would leave.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterable

log = logging.getLogger("notifier.outbox")

FLUSH_AFTER = 0.02  # seconds a record may wait for a transaction to ride along with

Write = Callable[[sqlite3.Connection], object]


class DeferredWrites:
    """Pending writes, and the thread that flushes them when nothing else does.

    :param flush: opens (and commits) a write transaction, which applies what is
        pending; called from the background thread.
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._pending: list[tuple[Hashable, Write]] = []
        self._since = 0.0
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._idle = False
        self._adds = 0
        self._stop = False
        self._thread: threading.Thread | None = None

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, write: Write, key: Hashable = None) -> None:
        """Keep ``write`` for the next write transaction (called under the file's lock);
        a ``key`` lets :meth:`withdraw` take it back."""
        self.add_all(((key, write),))

    def add_all(self, writes: Iterable[tuple[Hashable, Write]]) -> None:
        """Keep each ``(key, write)``, in order, as :meth:`add` would."""
        with self._guard:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.extend(writes)
            self._adds += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="notifier-outbox-records", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._wake.set()  # only a sleeping thread needs waking; a ticking one looks

    def withdraw(self, key: Hashable) -> bool:
        """Take back the pending write added with ``key``; whether there was one."""
        with self._guard:
            for i, (pending_key, _) in enumerate(self._pending):
                if pending_key == key:
                    del self._pending[i]
                    return True
        return False

    def take(self) -> list[Write]:
        """What is pending, to apply in the transaction being opened."""
        with self._guard:
            pending, self._pending = self._pending, []
        return [write for _, write in pending]

    def restore(self, writes: list[Write]) -> None:
        """Put back writes whose transaction rolled back: they are still owed."""
        if writes:
            with self._guard:
                self._pending[:0] = [(None, write) for write in writes]
                self._since = min(self._since, time.monotonic())

    def _run(self) -> None:
        # Ticks every FLUSH_AFTER while records keep coming, and sleeps until the next
        # add() once a whole tick passed without one: waking it on every add() would
        # cost a thread switch per dispatch, more than the transaction it saves.
        seen = -1
        while True:
            with self._guard:
                if self._stop:
                    return
                self._idle = quiet = self._adds == seen and not self._pending
                seen = self._adds
                wait = FLUSH_AFTER
                if self._pending:
                    wait = self._since + FLUSH_AFTER - time.monotonic()
            if quiet:
                self._wake.wait()
            elif wait > 0:
                self._wake.wait(wait)
            else:
                try:
                    self._flush()
                except Exception as exc:  # a busy or broken file: say so, try again
                    log.warning("outbox: recording deliveries failed, will retry: %s", exc)
                    self._wake.wait(1.0)
            self._wake.clear()

    def stop(self) -> None:
        """Stop the thread; the caller flushes what is left."""
        with self._guard:
            self._stop = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
