"""The outbox file itself: creating and opening it, recognising it as an outbox, its
tables and the migrations that bring an older file up to date, and what SQLite's errors
say about it.

The file runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives
the process being killed (it is in the WAL, which the OS holds), and commits cost no
fsync; ``synchronous = "full"`` also survives power loss, at a cost per commit.

The schema version lives in SQLite's ``user_version``; ``application_id`` marks the file
as a notifier outbox, so pointing ``[outbox] path`` at some other database is refused
instead of written into. Every ``sqlite3`` exception is translated (:func:`translate`)
into an :class:`~notifier.errors.OutboxError` that says what is wrong with the file and
what to do about it.
"""

from __future__ import annotations

import os
import sqlite3
import time

from notifier.errors import OutboxError
from notifier.filemodes import create as create_file
from notifier.filemodes import make_dirs, parse_mode
from notifier.outbox.settings import MEMORY, resolve

SYNCHRONOUS = ("normal", "full")
WAL_PAGES = 5000  # pages in the write-ahead log before a checkpoint

# "NOTF" as a 32-bit integer.
APPLICATION_ID = 0x4E4F5446
_SQLITE_MAGIC = b"SQLite format 3\x00"

# Partial indexes cover only live rows, so finished deliveries cost the hot path nothing.
# Queries must repeat the exact WHERE text for SQLite to use them.
LIVE = "state IN ('pending', 'inflight')"

# Every column but the id, shared by the table's first form and its rebuild in version 2.
_DELIVERY_COLUMNS = """
    idempotency_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    alert TEXT NOT NULL,
    mentions TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL CHECK (state IN ('pending', 'inflight', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deduplicated INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL
"""
_DELIVERY_INDEXES = f"""
CREATE INDEX deliveries_live ON deliveries (channel, id) WHERE {LIVE};
CREATE INDEX deliveries_live_fingerprint ON deliveries (fingerprint, channel) WHERE {LIVE};
CREATE INDEX deliveries_finished ON deliveries (state, updated_at)
    WHERE state IN ('delivered', 'dead');
"""

_V1 = f"""
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,{_DELIVERY_COLUMNS});
{_DELIVERY_INDEXES}
-- Last time each (fingerprint, status) was sent on a channel: the dedup window.
CREATE TABLE dedup (
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, channel, status)
) WITHOUT ROWID;

-- Start time of every send per channel, for "at most N in any W seconds".
CREATE TABLE sends (
    channel TEXT NOT NULL,
    at REAL NOT NULL,
    delivery_id INTEGER
);
CREATE INDEX sends_channel_at ON sends (channel, at);

-- Per channel: the provider's block, the circuit breaker, and the channel lease that keeps
-- one worker at a time delivering a channel (in order).
CREATE TABLE channels (
    name TEXT PRIMARY KEY,
    blocked_until REAL NOT NULL DEFAULT 0,
    circuit TEXT NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed', 'open', 'half_open')),
    failures INTEGER NOT NULL DEFAULT 0,
    open_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL NOT NULL DEFAULT 0
);
"""

# Version 2: ids without AUTOINCREMENT. It wrote the sqlite_sequence page in every
# transaction that inserted a delivery, about a quarter of a dispatch's write cost.
# Plain rowids are the largest id + 1, so they still grow; the sweep of old deliveries
# keeps the newest row (admin._PURGE) so that it never lets an id be given out twice.
_V2 = f"""
CREATE TABLE deliveries_v2 (
    id INTEGER PRIMARY KEY,{_DELIVERY_COLUMNS});
INSERT INTO deliveries_v2 SELECT * FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
{_DELIVERY_INDEXES}
DELETE FROM sqlite_sequence WHERE name = 'deliveries'
"""  # noqa: S608 (built from constants)

# Version 3: each delivery remembers the channel it was written for (its identity, see
# notifier.identity) and the configuration file that wrote it, so processes with
# other configurations sharing the file leave it alone and operators see whose it is;
# and, for a delivery folded into a digest, the digest that delivered it.
_V3 = """
ALTER TABLE deliveries ADD COLUMN channel_identity TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN config TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN delivered_by TEXT
"""

# Version 4: a channel's state (lease, provider's block, circuit, send log) is keyed by
# its name and identity, so two configurations sharing the file with a channel of one
# name but other settings each keep their own. Rows from before keep the identity ''.
_V4 = """
CREATE TABLE channels_v4 (
    name TEXT NOT NULL,
    identity TEXT NOT NULL DEFAULT '',
    blocked_until REAL NOT NULL DEFAULT 0,
    circuit TEXT NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed', 'open', 'half_open')),
    failures INTEGER NOT NULL DEFAULT 0,
    open_until REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (name, identity)
);
INSERT INTO channels_v4 (name, blocked_until, circuit, failures, open_until, lease_owner,
    lease_expires)
    SELECT name, blocked_until, circuit, failures, open_until, lease_owner, lease_expires
    FROM channels;
DROP TABLE channels;
ALTER TABLE channels_v4 RENAME TO channels;
ALTER TABLE sends ADD COLUMN identity TEXT NOT NULL DEFAULT '';
DROP INDEX sends_channel_at;
CREATE INDEX sends_channel_at ON sends (channel, identity, at)
"""

# Version 5: a dispatch's commit writes fewer pages. No index of finished deliveries
# (every delivery moved into it); the sweep of delivered rows walks the oldest ids
# instead (store._PURGED), and dead letters, few and listed by operators, keep an index
# of their own. A send is recorded on its delivery's row alone: the dedup window reads
# delivered rows by fingerprint (an index on every row, which a change of state leaves
# alone) and the dedup table keeps only what rows said before they were purged. What was
# sent is known per channel identity, as the channel's other state is since version 4:
# another configuration's send to a same-named channel is not this one's duplicate.
_V5 = """
DROP INDEX deliveries_finished;
CREATE INDEX deliveries_dead ON deliveries (state) WHERE state = 'dead';
DROP INDEX deliveries_live_fingerprint;
CREATE INDEX deliveries_fingerprint ON deliveries (fingerprint, channel);
CREATE TABLE dedup_v5 (
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    identity TEXT NOT NULL DEFAULT '',
    sent_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, channel, identity, status)
) WITHOUT ROWID;
INSERT INTO dedup_v5 (fingerprint, status, channel, sent_at)
    SELECT fingerprint, status, channel, sent_at FROM dedup;
DROP TABLE dedup;
ALTER TABLE dedup_v5 RENAME TO dedup
"""

# MIGRATIONS[n] brings a file from version n to n + 1. Append; never edit a released one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
VERSION = len(MIGRATIONS)


def _refuse(path: str, app_id: int, version: int, foreign: bool) -> None:
    """Raise unless a file with this ``application_id`` and ``user_version`` is an
    outbox this notifier reads; ``foreign``: it has content no outbox version had."""
    if app_id not in (0, APPLICATION_ID) or foreign:
        raise OutboxError(f"{path} is a SQLite database but not a notifier outbox")
    if version > VERSION:
        raise OutboxError(
            f"outbox {path} has schema version {version}, newer than this notifier "
            f"understands ({VERSION}); upgrade notifier"
        )


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
    _refuse(path, app_id, version, foreign=app_id == 0 and pages > 1)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file open on ``conn`` (in a write transaction) up to :data:`VERSION`.

    :raises OutboxError: the file is not an outbox, or newer than this notifier.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    _refuse(path, app_id, version, foreign=version == 0 and tables > 0)
    if version == VERSION and app_id == APPLICATION_ID:
        return  # writing nothing: a file on a full disk still opens
    for script in MIGRATIONS[version:]:
        # executescript would COMMIT first; run statement by statement instead so a
        # failed migration leaves the file as it was.
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {VERSION}")


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
