"""One SQLite connection to the outbox file: its transactions, and the records that
ride along with the next one (group commit).

Several processes may share one file; ``busy_timeout`` makes each wait for the others'
short write transactions instead of failing at once. Opening, recognising and
migrating the file, and what its errors mean, are :mod:`~.file`'s.

**Group commit.**
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

import atexit
import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator

from notifier.errors import OutboxError
from notifier.filemodes import DIR_MODE, FILE_MODE
from notifier.outbox import file as outbox_file
from notifier.outbox.checkpoints import Checkpointer
from notifier.outbox.schema import migrate
from notifier.outbox.settings import MEMORY

log = logging.getLogger("notifier.outbox")

CHECK_FILE_EVERY = 2.0  # seconds between looks at whether the file is still ours
_KEPT: list[sqlite3.Connection] = []  # connections to files deleted under us, see close()


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


class Database:
    """A migrated, thread-safe connection to one outbox file (or ``:memory:``).

    One connection serves every thread of the process behind a lock: SQLite allows one
    writer at a time anyway, and the outbox's transactions are short.
    """

    def __init__(
        self, path: str, conn: sqlite3.Connection, checkpoints: sqlite3.Connection | None = None
    ) -> None:
        """
        :param checkpoints: a second connection to the same file, for checkpoints off
            the writing thread (see :mod:`~.checkpoints`).
        """
        self.path = path
        self._conn = conn
        self._checkpointer = Checkpointer(checkpoints) if checkpoints is not None else None
        # The file opened, by device and inode: a file deleted, moved or replaced at the
        # path under this process is noticed (see check_file), not silently kept on.
        self._identity = outbox_file.file_id(path)
        self._checked = time.monotonic()
        self.stale: str | None = None
        self._lock = threading.RLock()
        self._deferred = DeferredWrites(self.flush)
        _OPEN.add(self)

    @classmethod
    def open(
        cls,
        path: str | None = None,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "normal",
        file_mode: str = FILE_MODE,
        dir_mode: str = DIR_MODE,
    ) -> Database:
        """Open (creating and migrating as needed) the outbox at ``path``.

        :param file_mode: permissions (octal) of the file when it is created here, and so
            of its ``-wal`` and ``-shm`` files, which SQLite gives the database's mode.
        :param dir_mode: permissions (octal) of missing directories created for it.
        :raises OutboxError: the file is corrupt, locked, not an outbox, or not writable.
        """
        path = outbox_file.create(path, synchronous, file_mode, dir_mode)
        conn = outbox_file.connect(path, busy_timeout, synchronous)
        second = None
        try:
            # Opened with the first, so both are connections to the same file.
            if path != MEMORY:
                second = outbox_file.connect(path, busy_timeout, synchronous)
            db = cls(path, conn, second)
            with db.write("upgrading its schema") as migrating:
                migrate(migrating, path)
        except BaseException:
            conn.close()
            if second is not None:
                second.close()
            raise
        return db

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise outbox_file.translate(exc, self.path, doing) from exc

    def check_file(self) -> None:
        """Raise when the file at ``path`` is no longer the one this process opened.

        :raises OutboxError: it was deleted, moved or replaced; logged once as an error.
        """
        if self.stale is None and self._identity is not None:
            now = outbox_file.file_id(self.path)
            if now != self._identity:
                what = "deleted or moved" if now is None else "replaced by another file"
                self.stale = (
                    f"outbox {self.path} was {what} while this process used it; this "
                    f"process stops using it (what it held is lost to it): restart the "
                    f"process to open the file now at the path, and keep the outbox file "
                    f"in place while notifier runs"
                )
                log.error("%s", self.stale)
        if self.stale is not None:
            raise OutboxError(self.stale)

    def _check_now(self) -> None:
        now = time.monotonic()
        if self.stale is not None or now - self._checked >= CHECK_FILE_EVERY:
            self._checked = now
            self.check_file()

    @contextlib.contextmanager
    def write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A write transaction: taken at once (``BEGIN IMMEDIATE``), all or nothing."""
        conn = self._conn
        self._check_now()
        with self._lock:
            owed = self._deferred.take() if self._deferred else []
            try:  # translating inline, not through _translated: this is the hot path
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for write in owed:
                        write(conn)
                    yield conn
                    conn.execute("COMMIT")
                    if self._checkpointer is not None:
                        self._checkpointer.committed()
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._deferred.restore(owed)
                    raise
            except sqlite3.Error as exc:
                raise outbox_file.translate(exc, self.path, doing) from exc

    def defer(self, write: Write, key: Hashable = None) -> None:
        """Run ``write`` at the start of the next write transaction, or within
        :data:`FLUSH_AFTER` seconds (group commit); ``key`` lets :meth:`withdraw` take
        it back."""
        with self._lock:
            self._deferred.add(write, key)

    def defer_all(self, writes: Iterable[tuple[Hashable, Write]]) -> None:
        """:meth:`defer` each ``(key, write)``, in order, taking the locks once."""
        with self._lock:
            self._deferred.add_all(writes)

    def withdraw(self, key: Hashable) -> bool:
        """Take back a deferred write by its key, before it runs; whether it was there."""
        with self._lock:
            return self._deferred.withdraw(key)

    def flush(self) -> None:
        """Write what :meth:`defer` holds now."""
        with self._lock:
            if self._deferred:
                with self.write("recording deliveries"):
                    pass

    @contextlib.contextmanager
    def read(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The connection for reads; each statement sees one consistent snapshot, which
        includes what :meth:`defer` holds."""
        self._check_now()
        with self._lock:
            if self._deferred and not self._conn.in_transaction:  # not inside our own write
                self.flush()
            with self._translated(doing):
                yield self._conn

    def check(self) -> str:
        """SQLite's ``quick_check`` verdict: ``"ok"`` or the problems found."""
        with self.read("checking it") as conn:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    def close(self) -> None:
        _OPEN.discard(self)
        self._deferred.stop()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        try:
            self.flush()
        except OutboxError as exc:  # still in flight in the file: recovery sends it again
            log.warning("outbox: could not record deliveries before closing: %s", exc)
        with self._lock:
            if self.stale is not None:
                # Closing the last connection to a deleted file checkpoints it and
                # deletes the -wal and -shm files *at the path*: those of whatever file
                # is there now. The stale connection is kept open instead.
                _KEPT.append(self._conn)
                if self._checkpointer is not None:
                    _KEPT.append(self._checkpointer.conn)
                return
            if self._checkpointer is not None:
                self._checkpointer.conn.close()
            self._conn.close()


# Files not closed when the interpreter exits (a script that dispatches and ends) still
# get the records they owe: a daemon thread would be stopped before writing them.
_OPEN: weakref.WeakSet[Database] = weakref.WeakSet()


@atexit.register
def _flush_open_files() -> None:
    for db in list(_OPEN):
        try:
            db.flush()
        except OutboxError as exc:
            log.warning("outbox: could not record deliveries at exit: %s", exc)
