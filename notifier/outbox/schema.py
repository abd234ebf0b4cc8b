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

_V1 = f"""
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
);
CREATE INDEX deliveries_live ON deliveries (channel, id) WHERE {LIVE};
CREATE INDEX deliveries_live_fingerprint ON deliveries (fingerprint, channel) WHERE {LIVE};
CREATE INDEX deliveries_finished ON deliveries (state, updated_at)
    WHERE state IN ('delivered', 'dead');

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

-- Per channel: the provider's block, the circuit breaker, and the lane lease that keeps
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

# MIGRATIONS[n] brings a file from version n to n + 1. Append; never edit a released one.
MIGRATIONS: tuple[str, ...] = (_V1,)
VERSION = len(MIGRATIONS)
