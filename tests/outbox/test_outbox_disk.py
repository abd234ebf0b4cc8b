"""The outbox's file on a full disk or unopenable (alerts still go out, errors say what to
do), and the permissions of the files and directories it creates.

"Disk full" is SQLite's own: ``PRAGMA max_page_count`` caps the outbox connection at the
pages the file already has, so the next write that needs a page fails exactly as on a
full filesystem (``database or disk is full``).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from outbox_support import Receiver, webhook_config

from notifier import Alert, Dispatcher
from notifier.cli.main import main
from notifier.errors import ConfigError, OutboxError
from notifier.models import Outcome
from notifier.outbox import NewDelivery, OutboxSettings, OutboxStore
from notifier.plugins import PluginHost


@pytest.fixture
def receivers():
    with Receiver() as steady, Receiver() as flaky:
        yield {"steady": steady, "flaky": flaky}


@pytest.fixture
def dispatcher(tmp_path: Path, receivers, clock):
    config = tmp_path / "notifier.toml"
    config.write_text(webhook_config(receivers, 'path = "outbox.db"'))
    with Dispatcher.from_config(config, clock=clock, host=PluginHost.from_plugins([])) as d:
        yield d


def fill_the_disk(dispatcher: Dispatcher) -> None:
    with dispatcher.outbox.store.db.read("filling it") as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")


def big(title: str) -> Alert:
    return Alert(title=title, body="x" * 50_000)  # needs pages the full file cannot have


def test_an_alert_the_outbox_cannot_take_on_a_full_disk_is_still_sent_directly(
    dispatcher, receivers, tmp_path
):
    fill_the_disk(dispatcher)
    receipts = dispatcher.dispatch(big("disk full on db-1"))
    assert [(r.channel, r.outcome) for r in receipts] == [
        ("steady", Outcome.DELIVERED),
        ("flaky", Outcome.DELIVERED),
    ]
    assert receivers["steady"].titles == receivers["flaky"].titles == ["disk full on db-1"]
    for receipt in receipts:
        assert receipt.details["durable"] is False
        why = receipt.details["outbox_error"]
        assert str(tmp_path / "outbox.db") in why
        assert "database or disk is full" in why
        assert "free space" in why
    assert dispatcher.outbox.store.counts() == {}  # nothing half-written


def test_a_direct_attempt_that_fails_says_it_is_not_queued_nor_retried(dispatcher, receivers):
    fill_the_disk(dispatcher)
    receivers["flaky"].down = True
    by_channel = {r.channel: r for r in dispatcher.dispatch(big("disk full on db-2"))}
    assert by_channel["steady"].outcome is Outcome.DELIVERED
    failed = by_channel["flaky"]
    assert failed.outcome is Outcome.FAILED
    assert "503" in failed.error
    assert "not queued in the outbox, so not retried" in failed.error
    assert "database or disk is full" in failed.error


def test_a_full_disk_is_logged_once_per_dispatch_with_what_to_do(dispatcher, caplog):
    fill_the_disk(dispatcher)
    with caplog.at_level("WARNING", logger="notifier"):
        dispatcher.dispatch_many([big("a"), big("b")])
    [record] = [r for r in caplog.records if "without the outbox" in r.getMessage()]
    assert "4 delivery(ies) attempted directly" in record.getMessage()
    assert "not durable" in record.getMessage()


def test_once_there_is_room_again_alerts_are_queued_durably_again(dispatcher, receivers):
    fill_the_disk(dispatcher)
    dispatcher.dispatch(big("while full"))
    with dispatcher.outbox.store.db.read("making room") as conn:
        conn.execute("PRAGMA max_page_count = 1073741823")
    [steady, _] = dispatcher.dispatch(big("after"))
    assert steady.outcome is Outcome.DELIVERED
    assert "durable" not in steady.details
    assert dispatcher.outbox.store.counts()["steady"] == {"delivered": 1}


def test_an_outbox_that_cannot_be_opened_names_the_file_and_what_to_check(tmp_path):
    path = tmp_path / "outbox.db"
    os.mkdir(f"{path}-wal")  # SQLite cannot open its write-ahead log: "disk I/O error"
    with pytest.raises(OutboxError) as info:
        OutboxStore.open(str(path))
    message = str(info.value)
    assert str(path) in message
    assert "disk I/O error" in message
    assert "free space" in message
    assert "writable" in message


def test_reopening_an_up_to_date_outbox_writes_nothing_so_it_opens_on_a_full_disk(tmp_path):
    path = tmp_path / "outbox.db"
    OutboxStore.open(str(path)).close()
    store = OutboxStore.open(str(path))
    try:
        assert os.path.getsize(f"{path}-wal") == 0  # not a page: no free space needed
    finally:
        store.close()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the usual umask, which leaves new files world-readable
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def open_and_write(path: Path, **modes: str) -> None:
    store = OutboxStore.open(str(path), **modes)
    store.enqueue_many([NewDelivery(Alert(title="secret outage"), "ops")], now=1.0)
    for suffix in ("", "-wal", "-shm"):  # all three exist while the file is open
        assert mode(Path(f"{path}{suffix}")) == int(modes.get("file_mode", "600"), 8), suffix
    store.close()


def test_a_new_outbox_its_wal_and_shm_and_directories_are_private(tmp_path, umask_022):
    path = tmp_path / "state" / "notifier" / "outbox.db"
    open_and_write(path)
    assert mode(tmp_path / "state" / "notifier") == 0o700
    assert mode(tmp_path / "state") == 0o700


def test_configured_modes_are_applied_exactly(tmp_path, umask_022):
    path = tmp_path / "shared" / "outbox.db"
    open_and_write(path, file_mode="0660", dir_mode="0770")
    assert mode(tmp_path / "shared") == 0o770


def test_an_existing_outbox_and_its_directory_keep_their_modes(tmp_path, umask_022):
    (tmp_path / "var").mkdir(mode=0o755)
    path = tmp_path / "var" / "outbox.db"
    OutboxStore.open(str(path)).close()
    path.chmod(0o644)
    store = OutboxStore.open(str(path))  # the default modes are 0600 and 0700
    store.enqueue_many([NewDelivery(Alert(title="x"), "ops")], now=1.0)
    store.close()
    assert mode(path) == 0o644
    assert mode(tmp_path / "var") == 0o755


def test_the_modes_come_from_the_outbox_table(tmp_path, umask_022, receivers, clock):
    config = tmp_path / "notifier.toml"
    table = 'path = "db/outbox.db"\nfile_mode = "0640"\ndir_mode = "0750"'
    config.write_text(webhook_config(receivers, table))
    with Dispatcher.from_config(config, clock=clock, host=PluginHost.from_plugins([])) as d:
        d.dispatch(Alert(title="x"))
        assert mode(tmp_path / "db" / "outbox.db-wal") == 0o640
    assert mode(tmp_path / "db" / "outbox.db") == 0o640
    assert mode(tmp_path / "db") == 0o750


def test_a_mode_that_is_not_octal_permission_bits_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        OutboxSettings.from_table({"file_mode": "rw-r-----", "dir_mode": 448})
    text = str(info.value)
    assert "outbox.file_mode" in text and "outbox.dir_mode" in text and "octal" in text


def test_send_whose_outbox_cannot_be_opened_still_sends_directly_and_says_so(tmp_path, capsys):
    """The outbox's file cannot be created or opened (here SQLite cannot open its
    write-ahead log): the alert still goes out, its receipt says it is not durable."""
    audit = tmp_path / "audit.jsonl"
    outbox = tmp_path / "outbox.db"
    os.mkdir(f"{outbox}-wal")
    config = tmp_path / "notifier.toml"
    config.write_text(
        f'[outbox]\npath = "{outbox}"\n[channels.audit]\nkind = "jsonl"\npath = "{audit}"\n'
    )
    status = main(["send", "--config", str(config), "--title", "disk full", "--json"])
    out, err = capsys.readouterr()
    assert status == 0
    [receipt] = json.loads(out)
    assert receipt["outcome"] == "delivered"
    assert receipt["details"]["durable"] is False
    assert "free space" in receipt["details"]["outbox_error"]
    assert "sending directly, without the outbox" in err
    assert "disk full" in audit.read_text()
