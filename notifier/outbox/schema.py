"""The outbox's tables, and the migrations that bring an older file up to date.

The schema version lives in SQLite's ``user_version``; ``application_id`` marks the file
as a notifier outbox, so pointing ``[outbox] path`` at some other database is refused
instead of written into.
"""

from __future__ import annotations

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

# MIGRATIONS[n] brings a file from version n to n + 1. Append; never edit a released one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
VERSION = len(MIGRATIONS)
