"""The outbox file's tables: the schema, the migrations that bring an older file up to
date, and the marks that tell a notifier outbox from any other SQLite database.

The schema version lives in SQLite's ``user_version``; ``application_id`` marks the file
as a notifier outbox, so pointing ``[outbox] path`` at some other database is refused
instead of written into.
"""

from __future__ import annotations

import sqlite3

from notifier.errors import OutboxError

# "NOTF" as a 32-bit integer.
APPLICATION_ID = 0x4E4F5446

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
# And a group's message (an Alertmanager notification's) keeps its group, for templates.
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
ALTER TABLE dedup_v5 RENAME TO dedup;
ALTER TABLE deliveries ADD COLUMN alert_group TEXT
"""

# MIGRATIONS[n] brings a file from version n to n + 1. Append; never edit a released one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
VERSION = len(MIGRATIONS)


def refuse(path: str, app_id: int, version: int, foreign: bool) -> None:
    """Raise unless a file with this ``application_id`` and ``user_version`` is an
    outbox this notifier reads; ``foreign``: it has content no outbox version had."""
    if app_id not in (0, APPLICATION_ID) or foreign:
        raise OutboxError(f"{path} is a SQLite database but not a notifier outbox")
    if version > VERSION:
        raise OutboxError(
            f"outbox {path} has schema version {version}, newer than this notifier "
            f"understands ({VERSION}); upgrade notifier"
        )


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file open on ``conn`` (in a write transaction) up to :data:`VERSION`.

    :raises OutboxError: the file is not an outbox, or newer than this notifier.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    refuse(path, app_id, version, foreign=version == 0 and tables > 0)
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
