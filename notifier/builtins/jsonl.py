"""The ``jsonl`` channel: append one JSON object per delivery to a file.

An audit trail and a test double that needs no network. Each line holds the channel,
the delivery's idempotency key and attempt, and the alert; lines are written whole with
one ``write`` under a lock, so concurrent deliveries never interleave.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import attrs

from notifier import hookimpl
from notifier.errors import ChannelError
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option
from notifier.models import Alert, DeliveryContext, SendResult


@attrs.define
class JsonlChannel:
    name: str
    path: Path
    fsync: bool
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def kind(self) -> str:
        return "jsonl"

    def append(self, record: dict[str, object]) -> int:
        """Append one line; return the byte offset it starts at (its message id)."""
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    offset = out.tell()
                    out.write(line)
                    if self.fsync:
                        out.flush()
                        os.fsync(out.fileno())
            except OSError as exc:
                raise ChannelError(
                    f"channel {self.name!r}: cannot append to {self.path}: {exc.strerror}",
                    retryable=True,
                ) from exc
            return offset

    def close(self) -> None:
        pass


def build(spec: ChannelSpec, context: BuildContext) -> JsonlChannel:
    return JsonlChannel(spec.name, Path(spec.options["path"]), spec.options["fsync"])


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="jsonl",
            build=build,
            description="Append one JSON object per delivery to a file (no network).",
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
            ),
        )
    ]


@hookimpl
def notifier_send(channel: object, alert: Alert, delivery: DeliveryContext) -> SendResult | None:
    if not isinstance(channel, JsonlChannel):
        return None
    offset = channel.append(
        {
            "channel": channel.name,
            "delivered_at": time.time(),
            "idempotency_key": delivery.idempotency_key,
            "attempt": delivery.attempt,
            "mentions": list(delivery.mentions),
            "alert": alert.to_dict(),
        }
    )
    return SendResult(message_id=f"{channel.path.name}@{offset}")
