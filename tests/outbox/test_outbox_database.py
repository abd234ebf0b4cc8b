"""Opening the outbox file: defaults, migrations, and clear errors for bad files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from outbox_support import alert

from notifier.errors import OutboxError
from notifier.models import Alert
from notifier.outbox import NewDelivery, OutboxStore, default_path, schema
from notifier.outbox import file as outbox_file
from notifier.outbox.database import Database


def test_the_default_path_follows_xdg_data_home_on_linux():
    env = {"HOME": "/home/ann", "XDG_DATA_HOME": "/data/ann"}
    assert default_path(env, "linux") == "/data/ann/notifier/outbox.db"


def test_without_xdg_data_home_the_default_is_under_local_share():
    assert (
        default_path({"HOME": "/home/ann"}, "linux") == "/home/ann/.local/share/notifier/outbox.db"
    )


def test_a_relative_xdg_data_home_is_ignored_as_the_spec_requires():
    env = {"HOME": "/home/ann", "XDG_DATA_HOME": "relative/dir"}
    assert default_path(env, "linux") == "/home/ann/.local/share/notifier/outbox.db"


def test_macos_and_windows_use_their_own_data_directories():
    mac = default_path({"HOME": "/Users/ann"}, "darwin")
    assert mac == "/Users/ann/Library/Application Support/notifier/outbox.db"
    win = default_path(
        {"HOME": "C:/Users/ann", "LOCALAPPDATA": "C:/Users/ann/AppData/Local"}, "win32"
    )
    assert Path(win) == Path("C:/Users/ann/AppData/Local/notifier/outbox.db")


def test_opening_creates_missing_directories_and_a_wal_file(tmp_path):
    path = tmp_path / "deep" / "er" / "outbox.db"
    store = OutboxStore.open(str(path))
    store.enqueue_many([NewDelivery(alert(), "ops")], now=1.0)
    with store.db.read("test") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    store.close()
    assert path.exists()


def test_reopening_keeps_what_was_queued(db_path):
    store = OutboxStore.open(db_path)
    store.enqueue_many([NewDelivery(alert(), "ops")], now=1.0)
    store.close()
    again = OutboxStore.open(db_path)
    assert again.counts() == {"ops": {"pending": 1}}
    again.close()


def test_memory_mode_runs_the_same_schema_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = OutboxStore.open(":memory:")
    store.enqueue_many([NewDelivery(alert(), "ops")], now=1.0)
    assert store.counts() == {"ops": {"pending": 1}}
    assert store.db.memory
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is certainly not SQLite\n" * 100)
    with pytest.raises(OutboxError, match="corrupt or not a SQLite database") as info:
        OutboxStore.open(str(path))
    assert str(path) in str(info.value)
    assert not info.value.retryable


def test_a_database_corrupted_after_writing_gives_a_clear_error_not_a_traceback(db_path):
    store = OutboxStore.open(db_path)
    store.enqueue_many([NewDelivery(alert(f"a{i}"), "ops") for i in range(200)], now=1.0)
    store.close()
    data = bytearray(Path(db_path).read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # keep the header, wreck every page
    Path(db_path).write_bytes(bytes(data))
    with pytest.raises(OutboxError, match="corrupt"):
        s = OutboxStore.open(db_path)
        s.counts()


def test_a_locked_database_is_a_retryable_error_naming_the_lock(db_path):
    store = OutboxStore.open(db_path, busy_timeout=0.05)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(OutboxError, match="locked by another process") as info:
            store.enqueue_many([NewDelivery(alert(), "ops")], now=1.0)
        assert info.value.retryable
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.enqueue_many([NewDelivery(alert(), "ops")], now=1.0)  # usable once released
    assert store.counts() == {"ops": {"pending": 1}}
    store.close()


def test_opening_a_database_another_process_holds_locked_is_a_clear_error(db_path):
    OutboxStore.open(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(OutboxError, match="locked"):
            OutboxStore.open(db_path, busy_timeout=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_path_below_a_regular_file_cannot_be_created(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(OutboxError, match="cannot create the outbox directory"):
        OutboxStore.open(str(blocker / "outbox.db"))


def test_a_directory_as_path_is_refused(tmp_path):
    with pytest.raises(OutboxError, match="is a directory"):
        OutboxStore.open(str(tmp_path))


def test_another_applications_database_is_not_written_into(tmp_path):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxError, match="not a notifier outbox"):
        OutboxStore.open(str(path))
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    conn.close()
    assert tables == ["users"]


def test_an_outbox_from_a_newer_notifier_asks_for_an_upgrade(db_path):
    OutboxStore.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    conn.close()
    with pytest.raises(OutboxError, match="upgrade notifier"):
        OutboxStore.open(db_path)


def test_a_version_1_file_is_upgraded_keeping_its_deliveries_and_ids(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    for statement in schema.MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    kept = alert("kept")
    conn.execute(  # as version 1 wrote it, with an AUTOINCREMENT id
        "INSERT INTO deliveries (idempotency_key, channel, fingerprint, status, alert, state,"
        " next_attempt_at, created_at, enqueued_at, updated_at)"
        " VALUES ('k1', 'ops', ?, 'firing', ?, 'pending', 1, 1, 1, 1)",
        (kept.fingerprint, json.dumps(kept.to_dict())),
    )
    conn.execute("INSERT INTO channels (name) VALUES ('ops')")
    written_id = conn.execute("SELECT max(id) FROM deliveries").fetchone()[0]
    conn.close()

    store = OutboxStore.open(db_path)
    try:
        with store.db.read("test") as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'deliveries'")
            assert "AUTOINCREMENT" not in ddl.fetchone()[0]
            indexes = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'"
            ).fetchall()
        # Since version 5: no index of finished deliveries, one of dead letters only, and
        # fingerprints of every row (the dedup window reads delivered ones).
        assert {n for (n,) in indexes} == {
            "deliveries_live",
            "deliveries_fingerprint",
            "deliveries_dead",
        }
        assert store.get([written_id])[written_id].alert().title == "kept"
        [later] = store.enqueue_many([NewDelivery(alert("new"), "ops")], now=2.0)
        assert later.id == written_id + 1
    finally:
        store.close()


def test_an_unknown_synchronous_mode_is_refused():
    with pytest.raises(OutboxError, match="synchronous"):
        Database.open(":memory:", synchronous="sometimes")


def test_using_a_closed_store_says_it_is_closed():
    store = OutboxStore.open(":memory:")
    store.close()
    with pytest.raises(OutboxError, match="closed"):
        store.counts()


def test_the_claim_query_uses_the_partial_index_on_live_rows(store):
    from notifier.outbox.claiming import HEAD as _HEAD
    from notifier.outbox.writing import LIVE_FPS as _LIVE_FPS
    from notifier.outbox.writing import LOOK

    with store.db.read("test") as conn:
        head = conn.execute(f"EXPLAIN QUERY PLAN {_HEAD}", ("ops", 5)).fetchall()
        fps = conn.execute(f"EXPLAIN QUERY PLAN {_LIVE_FPS}", ("[]",)).fetchall()
        args = {"fp": "f", "channel": "ops", "identity": "", "dedup": 1}
        look = str(conn.execute(f"EXPLAIN QUERY PLAN {LOOK}", args).fetchall())
    assert "deliveries_live" in str(head)
    assert "deliveries_fingerprint" in str(fps)
    assert "deliveries_fingerprint" in look and "deliveries_live (" in look
    assert "SCAN deliveries" not in look


def test_a_long_stream_of_small_writes_keeps_the_write_ahead_log_bounded(db_path):
    # Checkpoints run on the writing connection between its transactions, so each one
    # completes and the log is reused from its start instead of growing with the stream.
    store = OutboxStore.open(db_path)
    try:
        for i in range(6000):
            store.enqueue_many([NewDelivery(Alert(title=f"a{i}"), "ops")], now=1.0)
        wal = Path(db_path + "-wal").stat().st_size
    finally:
        store.close()
    # 6,000 transactions of a few pages each would be over 100 MB of log.
    assert wal < (outbox_file.WAL_PAGES + 500) * 4096


def test_a_second_connection_checkpoints_the_log_off_the_writing_thread(db_path):
    from notifier.outbox.checkpoints import EVERY

    store = OutboxStore.open(db_path)
    # The writing connection's own checkpoints off: only the checkpointer reuses the log.
    store.db._conn.execute("PRAGMA wal_autocheckpoint = 0")
    checkpointer = store.db._checkpointer
    assert checkpointer is not None

    written = 0

    def write_and_wait(rounds: int) -> int:
        # Up to a checkpoint's transaction, the last one: the checkpoint copies all.
        nonlocal written
        while True:
            store.enqueue_many([NewDelivery(Alert(title=f"a{written}"), "ops")], now=1.0)
            written += 1
            if checkpointer._commits % EVERY == 0:
                break
        with checkpointer.done:
            assert checkpointer.done.wait_for(lambda: checkpointer.count >= rounds, timeout=30)
        return Path(db_path + "-wal").stat().st_size

    try:
        first = write_and_wait(1)
        # Each later stretch starts over at the log's beginning, so the log stays about
        # the size of one stretch (a log never reused would be 2, 3, 4 times it).
        sizes = [write_and_wait(n) for n in (2, 3, 4)]
        assert max(sizes) < first * 1.5
        assert store.counts()["ops"]["pending"] == written >= 3 * EVERY
        assert checkpointer.conn.total_changes == 0  # only checkpoints went through it
    finally:
        store.close()


class _LockedAtFirst(sqlite3.Connection):
    """A connection whose first switches to WAL find the file locked, as when another
    process creates the file or checkpoints it on closing at the same moment."""

    refusals = 0

    def execute(self, sql, *args):
        if "journal_mode = WAL" in sql and _LockedAtFirst.refusals > 0:
            _LockedAtFirst.refusals -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().execute(sql, *args)


@pytest.fixture
def locked_at_first(monkeypatch):
    connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **k: connect(*a, factory=_LockedAtFirst, **k)
    )
    return _LockedAtFirst


def test_opening_waits_out_a_file_locked_while_another_process_sets_it_up(
    tmp_path, locked_at_first
):
    locked_at_first.refusals = 3
    conn = outbox_file.connect(str(tmp_path / "outbox.db"), 5.0, "normal")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert locked_at_first.refusals == 0


def test_opening_a_file_locked_past_busy_timeout_is_a_clear_error(tmp_path, locked_at_first):
    locked_at_first.refusals = 10**9
    with pytest.raises(OutboxError, match="locked by another process"):
        outbox_file.connect(str(tmp_path / "outbox.db"), 0.05, "normal")
