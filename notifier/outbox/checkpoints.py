"""Moving WAL checkpoints off the dispatching thread.

A checkpoint copies the write-ahead log back into the database file and, with
``synchronous=NORMAL``, fsyncs both. SQLite runs one on the committing connection each
time the WAL passes 1,000 pages: with a dispatch writing about a dozen pages, every
ninetieth dispatch waited for two fsyncs, about 30 us a commit on average on the
development machine. SQLite's documentation suggests the alternative used here for
busy writers: turn automatic checkpoints off and run them from another thread.

A process starts its checkpointer only once it has committed :data:`START_AFTER`
transactions, so a short ``notifier send`` keeps SQLite's own checkpoints (and the
checkpoint SQLite runs when the last connection closes). From then on the thread
checkpoints every :data:`EVERY` commits, and at least every :data:`INTERVAL` seconds
while commits happen, with its own connection (``PASSIVE``: it never blocks a writer).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("notifier.outbox")

START_AFTER = 64  # commits before this process takes checkpoints over
EVERY = 64  # commits between checkpoints (about 800 WAL pages at a dozen per dispatch)
INTERVAL = 1.0  # seconds: a slower stream of commits is checkpointed this often


class Checkpointer:
    """Counts commits on one connection and checkpoints its file from a thread."""

    def __init__(self, path: str, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self.path = path
        self._conn = conn  # the writing connection, to switch its own checkpoints off
        self._busy_timeout = busy_timeout
        self._commits = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.checkpointed = threading.Event()  # set after each checkpoint, for tests
        self._running = threading.Lock()  # one checkpoint at a time, ours or flush()'s

    def committed(self) -> None:
        """Called after each commit, under the database's lock."""
        self._commits += 1
        if self._commits % EVERY:
            return
        if self._thread is None:
            if self._commits < START_AFTER:
                return
            self._start()
        self._wake.set()

    def _start(self) -> None:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        except sqlite3.Error as exc:
            log.warning("outbox %s: checkpoints stay on the writing thread: %s", self.path, exc)
            self._commits = -(2**62)  # never try again
            return
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="notifier-outbox-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            seen = -1
            while True:
                self._wake.wait(INTERVAL)
                self._wake.clear()
                if self._stop:
                    return
                if self._commits == seen:
                    continue
                seen = self._commits
                try:
                    self.flush(conn)
                    self.checkpointed.set()
                except sqlite3.Error as exc:  # a busy file: the next round tries again
                    log.debug("outbox %s: checkpoint skipped: %s", self.path, exc)
        finally:
            conn.close()

    def flush(self, conn: sqlite3.Connection) -> None:
        """Checkpoint now through ``conn``, after any checkpoint under way."""
        with self._running:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1

    def close(self) -> None:
        """Stop the thread; SQLite checkpoints when the file's last connection closes."""
        if self._thread is None:
            return
        self._stop = True
        self._wake.set()
        self._thread.join()
