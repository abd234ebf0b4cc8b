"""The outbox file deleted or replaced while a process uses it: noticed within seconds,
logged as an error, and nothing is written to a file that is not a notifier outbox."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3

import pytest

from notifier.errors import OutboxError
from notifier.models import Alert
from notifier.outbox import NewDelivery, OutboxStore
from notifier.outbox import database as database_module


def _digest(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _foreign_database(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()


@pytest.fixture
def check_at_once(monkeypatch):
    monkeypatch.setattr(database_module, "CHECK_FILE_EVERY", 0.0)


def test_a_replaced_file_is_noticed_and_never_written(tmp_path, caplog, check_at_once):
    path = str(tmp_path / "outbox.db")
    store = OutboxStore.open(path)
    store.enqueue_many([NewDelivery(Alert(title="before"), "ops")], now=1.0)
    other = str(tmp_path / "other.db")
    _foreign_database(other)
    os.replace(other, path)  # another application's database now sits at the path
    before = _digest(path)
    with (
        caplog.at_level(logging.ERROR, logger="notifier.outbox"),
        pytest.raises(OutboxError, match="replaced by another file"),
    ):
        store.enqueue_many([NewDelivery(Alert(title="after"), "ops")], now=2.0)
    assert any("restart" in r.getMessage() for r in caplog.records)
    store.close()
    assert _digest(path) == before
    # A new process refuses the foreign file without writing to it either.
    with pytest.raises(OutboxError, match="not a notifier outbox"):
        OutboxStore.open(path)
    assert _digest(path) == before


def test_a_deleted_file_is_noticed_and_the_stale_one_is_not_used(tmp_path, caplog, check_at_once):
    path = str(tmp_path / "outbox.db")
    store = OutboxStore.open(path)
    store.enqueue_many([NewDelivery(Alert(title="before"), "ops")], now=1.0)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    with (
        caplog.at_level(logging.ERROR, logger="notifier.outbox"),
        pytest.raises(OutboxError, match="deleted or moved"),
    ):
        store.counts()
    assert [r for r in caplog.records if r.levelno == logging.ERROR]
    fresh = OutboxStore.open(path)  # a new process starts a new file at the path
    fresh.enqueue_many([NewDelivery(Alert(title="new"), "ops")], now=2.0)
    store.close()  # the stale connection must not delete the new file's -wal and -shm
    assert fresh.counts() == {"ops": {"pending": 1}}
    fresh.close()


def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path):
    path = tmp_path / "outbox.db"
    path.write_bytes(b"these are somebody's notes, not a database\n" * 10)
    before = _digest(path)
    with pytest.raises(OutboxError, match="not a SQLite database"):
        OutboxStore.open(str(path))
    assert _digest(path) == before
    assert not os.path.exists(str(path) + "-wal")
