"""One SQLite connection to the outbox file: opening, migrating, transactions, errors.

The file runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives
the process being killed (it is in the WAL, which the OS holds), and commits cost no
fsync; ``synchronous = "full"`` also survives power loss, at a cost per commit. Several
processes may share one file; ``busy_timeout`` makes each wait for the others' short
write transactions instead of failing at once.

Every ``sqlite3`` exception is translated here into an :class:`~notifier.errors.OutboxError`
that says what is wrong with the file and what to do about it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Hashable, Iterator

from notifier.errors import OutboxError
from notifier.filemodes import DIR_MODE, FILE_MODE, make_dirs, parse_mode
from notifier.filemodes import create as create_file
from notifier.outbox import schema
from notifier.outbox.deferred import DeferredWrites, Write
from notifier.outbox.settings import MEMORY, resolve

log = logging.getLogger("notifier.outbox")

SYNCHRONOUS = ("normal", "full")
CHECK_FILE_EVERY = 2.0  # seconds between looks at whether the file is still ours
_KEPT: list[sqlite3.Connection] = []  # connections to files deleted under us, see close()


def _file_identity(path: str) -> tuple[int, int] | None:
    if path == MEMORY:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


WAL_PAGES = 5000  # pages in the write-ahead log before a checkpoint


def translate(exc: sqlite3.Error, path: str, doing: str) -> OutboxError:
    """An :class:`OutboxError` for ``exc``, raised while ``doing`` something to ``path``."""
    text = str(exc)
    lower = text.lower()
    if "locked" in lower or "busy" in lower:
        return OutboxError(
            f"outbox {path} is locked by another process ({doing}); it is busy for longer "
            f"than busy_timeout allows: retry, or raise [outbox] busy_timeout",
            retryable=True,
        )
    if "not a database" in lower or "malformed" in lower or "corrupt" in lower:
        return OutboxError(
            f"outbox {path} is corrupt or not a SQLite database ({text}); move it aside "
            f"(queued deliveries in it are lost) and notifier starts a new one"
        )
    if "unable to open" in lower or "readonly" in lower or "read-only" in lower:
        return OutboxError(
            f"cannot write outbox {path} ({text}): check that its directory exists and is "
            f"writable, or set [outbox] path"
        )
    if "disk is full" in lower or "i/o error" in lower:
        return OutboxError(
            f"outbox {path}: {doing} failed: {text}; check the free space on its filesystem "
            f"and that the file, its -wal and -shm files and its directory are writable, or "
            f"set [outbox] path",
            retryable=True,
        )
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in lower:
        return OutboxError(f"outbox {path} is closed")
    return OutboxError(f"outbox {path}: {doing} failed: {text}")


class Database:
    """A migrated, thread-safe connection to one outbox file (or ``:memory:``).

    One connection serves every thread of the process behind a lock: SQLite allows one
    writer at a time anyway, and the outbox's transactions are short.
    """

    def __init__(self, path: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        # The file opened, by device and inode: a file deleted, moved or replaced at the
        # path under this process is noticed (see check_file), not silently kept on.
        self._identity = _file_identity(path)
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
        if synchronous not in SYNCHRONOUS:
            raise OutboxError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
        file_bits, dir_bits = parse_mode(file_mode), parse_mode(dir_mode)
        if file_bits is None or dir_bits is None:
            raise OutboxError(
                f'file_mode and dir_mode must be octal permission bits such as "0600", '
                f"got {file_mode!r} and {dir_mode!r}"
            )
        path = resolve(path)
        if path != MEMORY:
            parent = os.path.dirname(os.path.abspath(path))
            try:
                make_dirs(parent, dir_bits)
            except OSError as exc:
                raise OutboxError(
                    f"cannot create the outbox directory {parent}: {exc.strerror}; "
                    f"set [outbox] path to a writable place"
                ) from exc
            if os.path.isdir(path):
                raise OutboxError(f"outbox path {path} is a directory; name a file")
            try:
                # The alerts it holds are nobody else's business: SQLite would create the
                # file 0644, and its -wal and -shm files with the file's mode.
                create_file(path, file_bits)
            except OSError as exc:
                raise OutboxError(
                    f"cannot create outbox {path}: {exc.strerror}; check that its directory "
                    f"is writable and has free space, or set [outbox] path"
                ) from exc
            schema.refuse_foreign(path)
        try:
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise translate(exc, path, "opening") from exc
        db = cls(path, conn)
        try:
            with db._translated("opening"):
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
                # A bigger page cache keeps the indexes in memory during large batches.
                conn.execute("PRAGMA cache_size = -16000")
                # A checkpoint copies each changed page once and flushes the file: a
                # stream of dispatches rewrites the same few pages, so checkpointing
                # every 5,000 WAL pages (about 20 MB) instead of SQLite's 1,000 copies
                # and flushes far less per dispatch.
                conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
            with db.write("upgrading its schema") as migrating:
                schema.migrate(migrating, path)
        except BaseException:
            conn.close()
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
            raise translate(exc, self.path, doing) from exc

    def check_file(self) -> None:
        """Raise when the file at ``path`` is no longer the one this process opened.

        :raises OutboxError: it was deleted, moved or replaced; logged once as an error.
        """
        if self.stale is None and self._identity is not None:
            now = _file_identity(self.path)
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
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._deferred.restore(owed)
                    raise
            except sqlite3.Error as exc:
                raise translate(exc, self.path, doing) from exc

    def defer(self, write: Write, key: Hashable = None) -> None:
        """Run ``write`` at the start of the next write transaction, or within
        :data:`~notifier.outbox.deferred.FLUSH_AFTER` seconds (see
        :mod:`notifier.outbox.deferred`); ``key`` lets :meth:`withdraw` take it back."""
        with self._lock:
            self._deferred.add(write, key)

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
                return
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
