"""The jsonl channel's file: whole lines or none, no writing through symbolic links, and
private permissions for what it creates."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from notifier import Alert, Dispatcher
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.models import Outcome
from notifier.plugins import PluginHost


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.from_plugins([])


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the usual umask, which leaves new files world-readable
    yield
    os.umask(old)


def dispatcher(host: PluginHost, tmp_path: Path, **options: object) -> Dispatcher:
    channel = {"kind": "jsonl", "path": "logs/audit.jsonl", **options}
    return Dispatcher(
        parse_config({"channels": {"audit": channel}}, host, base_dir=tmp_path), host=host
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def titles(path: Path) -> list[str]:
    return [json.loads(line)["alert"]["title"] for line in path.read_text().splitlines()]


def test_a_write_that_fails_part_way_leaves_no_partial_line(host, tmp_path, monkeypatch):
    real_write = os.write

    def half_then_disk_full(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    with dispatcher(host, tmp_path) as d:
        d.dispatch(Alert(title="first"))
        monkeypatch.setattr(os, "write", half_then_disk_full)
        (failed,) = d.dispatch(Alert(title="lost to a full disk"))
        monkeypatch.setattr(os, "write", real_write)
        (receipt,) = d.dispatch(Alert(title="after"))
    assert failed.outcome is Outcome.FAILED and failed.details["retryable"] is True
    assert "No space left on device" in failed.error
    assert receipt.ok
    path = tmp_path / "logs" / "audit.jsonl"
    assert titles(path) == ["first", "after"]  # every line parses: none glued to a half
    offset = int(receipt.message_id.rsplit("@", 1)[1])
    assert path.read_bytes()[offset:].startswith(b'{"alert"')


def test_a_short_write_is_cut_back_and_reported(host, tmp_path, monkeypatch):
    real_write = os.write
    with dispatcher(host, tmp_path) as d:
        d.dispatch(Alert(title="first"))
        monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))
        (failed,) = d.dispatch(Alert(title="short"))
        monkeypatch.setattr(os, "write", real_write)
        d.dispatch(Alert(title="after"))
    assert failed.outcome is Outcome.FAILED and "wrote 10 of" in failed.error
    assert titles(tmp_path / "logs" / "audit.jsonl") == ["first", "after"]


def test_a_symbolic_link_at_the_path_is_refused(host, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "audit.jsonl").symlink_to(target)
    with dispatcher(host, tmp_path) as d:
        (receipt,) = d.dispatch(Alert(title="x"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.details["retryable"] is False
    assert "is a symbolic link" in receipt.error and "follow_symlinks = true" in receipt.error
    assert target.read_text() == "not yours\n"


def test_a_dangling_symbolic_link_is_refused_too(host, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "audit.jsonl").symlink_to(tmp_path / "created-through-the-link")
    with dispatcher(host, tmp_path) as d:
        (receipt,) = d.dispatch(Alert(title="x"))
    assert "is a symbolic link" in receipt.error
    assert not (tmp_path / "created-through-the-link").exists()


def test_follow_symlinks_appends_to_the_target(host, tmp_path):
    target = tmp_path / "real.jsonl"
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "audit.jsonl").symlink_to(target)
    with dispatcher(host, tmp_path, follow_symlinks=True) as d:
        (receipt,) = d.dispatch(Alert(title="x"))
    assert receipt.ok and titles(target) == ["x"]


def test_a_new_file_and_its_directories_are_private(host, tmp_path, umask_022):
    with dispatcher(host, tmp_path, path="a/b/audit.jsonl") as d:
        (receipt,) = d.dispatch(Alert(title="secret outage"))
    assert receipt.ok
    assert mode(tmp_path / "a" / "b" / "audit.jsonl") == 0o600
    assert mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a") == 0o700


def test_configured_modes_are_applied_exactly(host, tmp_path, umask_022):
    with dispatcher(host, tmp_path, file_mode="0664", dir_mode="775") as d:
        (receipt,) = d.dispatch(Alert(title="x"))
    assert receipt.ok
    assert mode(tmp_path / "logs" / "audit.jsonl") == 0o664
    assert mode(tmp_path / "logs") == 0o775


def test_an_existing_file_and_directory_keep_their_modes(host, tmp_path, umask_022):
    (tmp_path / "logs").mkdir(mode=0o755)
    path = tmp_path / "logs" / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    with dispatcher(host, tmp_path) as d:
        (receipt,) = d.dispatch(Alert(title="x"))
    assert receipt.ok
    assert mode(path) == 0o644 and mode(tmp_path / "logs") == 0o755


@pytest.mark.parametrize("value", ["rw-------", "0800", "0o600", "77777", 384])
def test_a_mode_that_is_not_octal_permission_bits_is_a_config_error(host, tmp_path, value):
    with pytest.raises(ConfigError) as info:
        dispatcher(host, tmp_path, file_mode=value)
    assert "channels.audit.file_mode" in str(info.value)
    assert "octal" in str(info.value)
