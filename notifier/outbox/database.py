"""One SQLite connection to the outbox file: its transactions, and the records that
ride along with the next one (group commit).

Several processes may share one file; ``busy_timeout`` makes each wait for the others'
short write transactions instead of failing at once. Opening and recognising the file,
and what its errors mean, are :mod:`~.file`'s; migrating it, :mod:`~.schema`'s.

Records of sends ride along with the next write transaction (group commit, see
:mod:`~.deferred`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Hashable, Iterable, Iterator

from notifier.errors import OutboxError
from notifier.filemodes import DIR_MODE, FILE_MODE
from notifier.outbox import file as outbox_file
from notifier.outbox.checkpoints import Checkpointer
from notifier.outbox.deferred import DeferredWrites, Write
from notifier.outbox.schema import migrate
from notifier.outbox.settings import MEMORY

log = logging.getLogger("notifier.outbox")

CHECK_FILE_EVERY = 2.0  # seconds between looks at whether the file is still ours
_KEPT: list[sqlite3.Connection] = []  # connections to files deleted under us, see close()


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
