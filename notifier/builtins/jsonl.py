"""The ``jsonl`` channel: append one JSON object per delivery to a file.

An audit trail and a test double that needs no network. Each line holds the channel,
the delivery's idempotency key and attempt, and the alert; lines are written whole with
one ``write`` under a lock, so concurrent deliveries never interleave, and a write that
fails part way is cut back off the file. The file holds alert contents, so it is created
private (:mod:`notifier.filemodes`), and a symbolic link at its path is refused unless
``follow_symlinks`` allows it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from pathlib import Path

import attrs

from notifier import hookimpl
from notifier.channelhooks import ChannelHooks
from notifier.errors import ChannelError, ConfigError, ConfigIssue
from notifier.filemodes import DIR_MODE, FILE_MODE, make_dirs, mode_problem, open_append
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.templates import message

log = logging.getLogger(__name__)


@attrs.define
class JsonlChannel:
    name: str
    path: Path
    fsync: bool
    follow_symlinks: bool = False
    file_mode: int = 0o600
    dir_mode: int = 0o700
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def kind(self) -> str:
        return "jsonl"

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        offset = self.append(self.record(alert, delivery, time.time()))
        return SendResult(message_id=f"{self.path.name}@{offset}")

    def record(self, alert: Alert, delivery: DeliveryContext, now: float) -> dict[str, object]:
        """The line a send appends (``notifier render`` shows it)."""
        record: dict[str, object] = {
            "channel": self.name,
            "delivered_at": now,
            "idempotency_key": delivery.idempotency_key,
            "attempt": delivery.attempt,
            "mentions": list(delivery.mentions),
            "alert": alert.to_dict(),
        }
        text = message(alert, delivery)
        if text is not None:  # the template's rendering, beside the alert itself
            record["message"] = text
        return record

    def append(self, record: dict[str, object]) -> int:
        """Append one line, whole or not at all; return the byte offset it starts at
        (its message id)."""
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        with self._lock:
            try:
                make_dirs(self.path.parent, self.dir_mode)
                fd = open_append(self.path, self.file_mode, follow_symlinks=self.follow_symlinks)
            except OSError as exc:
                raise self._error(exc) from exc
            try:
                return self._write(fd, line)
            finally:
                os.close(fd)

    def _write(self, fd: int, line: bytes) -> int:
        before = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)  # one write of O_APPEND: never split by another
            if written != len(line):  # the disk filled up part way
                raise OSError(errno.ENOSPC, f"wrote {written} of {len(line)} bytes")
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            self._cut_back(fd, before)
            raise self._error(exc) from exc
        return os.lseek(fd, 0, os.SEEK_CUR) - written

    def _cut_back(self, fd: int, size: int) -> None:
        """Take a partly written line back off the file, so the next one starts on a
        line of its own."""
        try:
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
        except OSError:
            log.exception(
                "channel %r: could not remove a partial line from %s", self.name, self.path
            )

    def _error(self, exc: OSError) -> ChannelError:
        if exc.errno == errno.ELOOP and not self.follow_symlinks:
            return ChannelError(
                f"channel {self.name!r}: {self.path} is a symbolic link; not appending "
                f"through it (set follow_symlinks = true to allow it)",
                retryable=False,
            )
        reason = exc.strerror or str(exc)
        return ChannelError(
            f"channel {self.name!r}: cannot append to {self.path}: {reason}", retryable=True
        )

    def close(self) -> None:
        pass


def build(spec: ChannelSpec, context: BuildContext) -> JsonlChannel:
    issues = validate(spec)
    if issues:
        raise ConfigError(issues)
    options = spec.options
    return JsonlChannel(
        spec.name,
        Path(options["path"]),
        options["fsync"],
        follow_symlinks=options["follow_symlinks"],
        file_mode=int(options["file_mode"], 8),
        dir_mode=int(options["dir_mode"], 8),
    )


def validate(spec: ChannelSpec) -> list[ConfigIssue]:
    issues = []
    for key in ("file_mode", "dir_mode"):
        problem = mode_problem(spec.options[key])
        if problem is not None:
            issues.append(ConfigIssue(spec.source, f"channels.{spec.name}.{key}", problem))
    return issues


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="jsonl",
            build=build,
            description="Append one JSON object per delivery to a file (no network).",
            preview=preview,
            options=(
                Option(
                    "path",
                    required=True,
                    path=True,
                    help="file to append to; relative to the config file's directory",
                ),
                Option(
                    "fsync",
                    bool,
                    default=False,
                    help="flush each line to disk before reporting it delivered",
                ),
                Option(
                    "follow_symlinks",
                    bool,
                    default=False,
                    help="append to the target of a symbolic link at path; false: refuse",
                ),
                Option(
                    "file_mode",
                    default=FILE_MODE,
                    help="permissions of a file it creates, in octal; existing files keep theirs",
                ),
                Option(
                    "dir_mode",
                    default=DIR_MODE,
                    help="permissions of directories it creates, in octal",
                ),
            ),
            validate=validate,
        )
    ]


def preview(channel: JsonlChannel, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    line = json.dumps(channel.record(alert, delivery, 0.0), ensure_ascii=False, sort_keys=True)
    return [Part(json.loads(line), line, len(line.encode("utf-8")))]


hooks = ChannelHooks(sends=(JsonlChannel,))
notifier_send = hooks.notifier_send
