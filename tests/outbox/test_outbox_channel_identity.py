"""A channel's state (rate window, circuit breaker, channel lease) is its identity's: two
configurations sharing one outbox file, each with a channel of the same name but other
settings, each keep their own."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from outbox_support import Receiver, alert, webhook_config

from notifier import Alert, Dispatcher
from notifier.models import Outcome
from notifier.outbox import OutboxStore, schema
from notifier.plugins import PluginHost


@pytest.fixture
def configs(tmp_path: Path, clock):
    """``open_config(name, receiver, rate_limit)``: a dispatcher for its own config file,
    with one channel ``ops``, on the outbox file every config here shares."""
    made: list[Dispatcher] = []
    shared = tmp_path / "shared.db"
    outbox = f'path = "{shared}"\nbreaker_threshold = 2\nbackoff_initial = 5'

    def open_config(name: str, receiver: Receiver, rate_limit: str) -> Dispatcher:
        config = tmp_path / f"{name}.toml"
        text = webhook_config({"ops": receiver}, outbox, rate_limit=rate_limit)
        config.write_text(text.replace("max_attempts = 1\n", "digest_threshold = 0\n"))
        dispatcher = Dispatcher.from_config(config, clock=clock, host=PluginHost.from_plugins([]))
        made.append(dispatcher)
        return dispatcher

    yield open_config
    for dispatcher in made:
        dispatcher.close()


def titles(n: int, prefix: str) -> list[Alert]:
    return [Alert(title=f"{prefix} {i}") for i in range(n)]


def test_each_configs_channel_of_one_name_keeps_its_own_rate_limit(configs):
    with Receiver() as first, Receiver() as second:
        slow = configs("slow", first, "{ count = 1, per = 60 }")
        fast = configs("fast", second, "{ count = 3, per = 60 }")
        sent = slow.dispatch_many(titles(3, "slow"))
        assert sorted(r.outcome for r in sent) == [Outcome.DELIVERED] + [Outcome.QUEUED] * 2
        # The slow config's send and its channel lease are its own: the fast one's
        # window still has all three slots.
        sent = fast.dispatch_many(titles(3, "fast"))
        assert [r.outcome for r in sent] == [Outcome.DELIVERED] * 3
        assert first.titles == ["slow 0"]
        assert sorted(second.titles) == ["fast 0", "fast 1", "fast 2"]
        with slow.outbox.store.db.read("test") as conn:
            rows = conn.execute("SELECT identity, count(*) FROM sends GROUP BY identity")
            assert sorted(n for _, n in rows.fetchall()) == [1, 3]


def test_each_configs_channel_of_one_name_keeps_its_own_circuit_breaker(configs):
    with Receiver() as first, Receiver() as second:
        failing = configs("failing", first, "{ count = 10, per = 60 }")
        healthy = configs("healthy", second, "{ count = 10, per = 60 }")
        first.down = True
        failing.dispatch(Alert(title="one"))
        failing.dispatch(Alert(title="two"))
        assert failing.outbox.circuit_states() == {"ops": "open"}
        assert healthy.outbox.circuit_states() == {"ops": "closed"}
        [receipt] = healthy.dispatch(Alert(title="three"))
        assert receipt.outcome is Outcome.DELIVERED
        assert second.titles == ["three"]
        assert first.titles == []


def test_another_configs_send_to_a_same_named_channel_is_not_a_duplicate(configs):
    with Receiver() as first, Receiver() as second:
        one = configs("one", first, "{ count = 10, per = 60 }")
        two = configs("two", second, "{ count = 10, per = 60 }")
        disk = Alert(title="disk full", labels={"host": "db1"})
        assert [r.outcome for r in one.dispatch(disk)] == [Outcome.DELIVERED]
        # Its people have not heard of it: config one's send went to its own URL.
        assert [r.outcome for r in two.dispatch(disk)] == [Outcome.DELIVERED]
        # Each config's own repeat is a duplicate, as ever.
        assert [r.outcome for r in one.dispatch(disk)] == [Outcome.DEDUPLICATED]
        assert [r.outcome for r in two.dispatch(disk)] == [Outcome.DEDUPLICATED]
        assert first.titles == second.titles == ["disk full"]


def test_a_version_3_file_is_upgraded_keeping_its_channel_state_send_log_and_sends(db_path, clock):
    conn = sqlite3.connect(db_path, isolation_level=None)
    for script in schema.MIGRATIONS[:3]:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 3")
    kept = alert("kept")
    now = clock.time()
    conn.execute(
        "INSERT INTO deliveries (idempotency_key, channel, fingerprint, status, alert, state,"
        " next_attempt_at, created_at, enqueued_at, updated_at)"
        " VALUES ('k1', 'ops', ?, 'firing', ?, 'pending', ?, ?, ?, ?)",
        (kept.fingerprint, json.dumps(kept.to_dict()), now, now, now, now),
    )
    conn.execute(
        "INSERT INTO channels (name, blocked_until, circuit, failures, open_until)"
        " VALUES ('ops', ?, 'open', 5, ?)",
        (now + 30, now + 20),
    )
    conn.execute("INSERT INTO sends (channel, at, delivery_id) VALUES ('ops', ?, 1)", (now - 1,))
    conn.execute(
        "INSERT INTO dedup (fingerprint, status, channel, sent_at)"
        " VALUES ('fp', 'resolved', 'ops', ?)",
        (now - 2,),
    )
    conn.close()

    store = OutboxStore.open(db_path)
    try:
        with store.db.read("test") as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
            channels = conn.execute(
                "SELECT name, identity, blocked_until, circuit, failures, open_until FROM channels"
            ).fetchall()
            sends = conn.execute("SELECT channel, identity, at, delivery_id FROM sends")
            assert sends.fetchall() == [("ops", "", now - 1, 1)]
        assert channels == [("ops", "", now + 30, "open", 5, now + 20)]
        # A process that writes no identity goes on with the state the file had.
        [wake] = store.wakes(now)
        assert (wake.channel, wake.reason, wake.ready_at) == ("ops", "blocked", now + 30)
        assert store.claim_due(now, 10, "w", 10.0) == []
        assert store.counts() == {"ops": {"pending": 1}}
        # What the file knew was sent, it still knows (as sent under no identity).
        assert store.sent_times("fp", "ops") == {"resolved": now - 2}
    finally:
        store.close()
