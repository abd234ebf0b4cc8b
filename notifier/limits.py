"""Upper bounds on the counts and durations a configuration may set.

Each is far above what a working deployment needs and far below what breaks the process:
a thread pool of millions of workers, a timeout past what ``threading`` can wait for, a
rate-limit window no one would notice ending. ``notifier check`` reports a value above
its bound with the key path, like any other configuration error; docs/configuration.md
lists them.
"""

from __future__ import annotations

MINUTE = 60.0
HOUR = 3600.0
DAY = 86_400.0
YEAR = 365 * DAY

# [dispatcher] workers and [outbox] workers: threads (and pooled connections) per channel.
MAX_WORKERS = 256
# One delivery, retries within the HTTP layer included.
MAX_DELIVERY_TIMEOUT = HOUR
# rate_limit = { count, per }: the limiter remembers the start of each of the last `count`.
MAX_RATE_COUNT = 100_000
MAX_RATE_PER = DAY
# The options every HTTP-based kind shares.
MAX_HTTP_TIMEOUT = 10 * MINUTE
MAX_HTTP_ATTEMPTS = 20
# An answer's body is held in memory whole; providers answer in kilobytes.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
