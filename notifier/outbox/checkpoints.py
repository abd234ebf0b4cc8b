"""Checkpoints off the sending thread: the write-ahead log copied into the file by a
connection and a thread of their own.

SQLite checkpoints from the connection whose commit took the log past
``wal_autocheckpoint`` pages, inside that ``COMMIT``: the dispatch that happens to cross
it copies every page changed since the last checkpoint and waits for two ``fsync``
calls. A stream of dispatches paid that as about a sixth of the outbox's SQL time. Here
a second connection checkpoints passively every :data:`EVERY` write transactions, on a
daemon thread (SQLite lets go of the GIL while it copies and syncs), so the dispatching
connection's own automatic checkpoint, which stays as the bound on the log's size, finds
little left to copy or sync.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("notifier.outbox")

EVERY = 200  # write transactions between checkpoints (about 1,200 log pages in a stream)


class Checkpointer:
    """Checkpoints ``conn``'s file when told enough transactions were committed."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._commits = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.count = 0  # checkpoints run, under ``done``
        self.done = threading.Condition()

    def committed(self) -> None:
        """Count one write transaction (called under the file's lock)."""
        self._commits += 1
        if self._commits % EVERY or self._stop:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="notifier-outbox-checkpoints", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the automatic checkpoint still bounds the log
                log.debug("outbox: checkpoint failed: %s", exc)
            with self.done:
                self.count += 1
                self.done.notify_all()

    def stop(self) -> None:
        """Stop the thread (its connection is the caller's to close or keep)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
