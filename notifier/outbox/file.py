"""The outbox file itself: creating and opening it, recognising it as an outbox from
its header before SQLite touches it, and what SQLite's errors say about it. Its tables
and their migrations are :mod:`notifier.outbox.schema`'s.

The file runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives
the process being killed (it is in the WAL, which the OS holds), and commits cost no
fsync; ``synchronous = "full"`` also survives power loss, at a cost per commit. Every
``sqlite3`` exception is translated (:func:`translate`) into an
:class:`~notifier.errors.OutboxError` that says what is wrong with the file and what to
do about it.
"""

from __future__ import annotations

import os
import sqlite3
import time

from notifier.errors import OutboxError
from notifier.filemodes import create as create_file
from notifier.filemodes import make_dirs, parse_mode
from notifier.outbox.schema import refuse
from notifier.outbox.settings import MEMORY, resolve

SYNCHRONOUS = ("normal", "full")
WAL_PAGES = 5000  # pages in the write-ahead log before a checkpoint

_SQLITE_MAGIC = b"SQLite format 3\x00"


def refuse_foreign(path: str) -> None:
    """Raise unless ``path`` is empty, or a notifier outbox of a schema this notifier
    knows, read from its header before SQLite opens it: opening a database in WAL mode
    writes to it, and no command may write to a file that is not ours.

    :raises OutboxError: naming what the file is instead.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutboxError(f"cannot read outbox {path}: {exc.strerror}") from exc
    if not header:
        return
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise OutboxError(
            f"outbox {path} is corrupt or not a SQLite database (no SQLite header); it is "
            f"left untouched: move it aside and notifier starts a new one"
        )
    version = int.from_bytes(header[60:64], "big")
    app_id = int.from_bytes(header[68:72], "big")
    pages = int.from_bytes(header[28:32], "big")
    refuse(path, app_id, version, foreign=app_id == 0 and pages > 1)


def create(path: str | None, synchronous: str, file_mode: str, dir_mode: str) -> str:
    """The outbox file's path, with the file and its directories created as needed.

    :param file_mode: permissions (octal) of the file when it is created here, and so
        of its ``-wal`` and ``-shm`` files, which SQLite gives the database's mode.
    :param dir_mode: permissions (octal) of missing directories created for it.
    :raises OutboxError: bad settings, a path that cannot be created, or a file there
        that is not an outbox.
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
        refuse_foreign(path)
    return path


def connect(path: str, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """A connection to the file at ``path``, with the settings the outbox runs with."""
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise translate(exc, path, "opening") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _journal_in_wal(conn, busy_timeout)
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        # A bigger page cache keeps the indexes in memory during large batches.
        conn.execute("PRAGMA cache_size = -16000")
        # A checkpoint copies each changed page once and flushes the file: a stream of
        # dispatches rewrites the same few pages, so checkpointing every 5,000 WAL pages
        # (about 20 MB) instead of SQLite's 1,000 copies and flushes far less per dispatch.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path, "opening") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _journal_in_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Put ``conn`` in WAL mode, waiting up to ``busy_timeout`` for the file.

    SQLite answers "database is locked" here at once, without its busy handler, while
    another process creates the file, switches it to WAL or closes the last connection
    to it (a checkpoint): two processes starting together on a new outbox hit that.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def file_id(path: str) -> tuple[int, int] | None:
    """The file at ``path`` by device and inode (``None``: none there, or in memory)."""
    if path == MEMORY:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


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
