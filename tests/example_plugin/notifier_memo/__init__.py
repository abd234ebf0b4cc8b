"""A third-party channel kind, ``memo``: appends one line per alert to a file."""

from __future__ import annotations

from pathlib import Path

import attrs

from notifier import hookimpl
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option
from notifier.models import Alert, DeliveryContext, SendResult


@attrs.frozen
class Memo:
    name: str
    path: Path
    prefix: str

    def close(self) -> None:
        pass


def build(spec: ChannelSpec, context: BuildContext) -> Memo:
    return Memo(spec.name, Path(spec.options["path"]), spec.options["prefix"])


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="memo",
            build=build,
            description="one memo line per alert",
            options=(Option("path", required=True, path=True), Option("prefix", default="memo")),
        )
    ]


@hookimpl
def notifier_send(channel: object, alert: Alert, delivery: DeliveryContext) -> SendResult | None:
    if not isinstance(channel, Memo):
        return None
    with channel.path.open("a", encoding="utf-8") as out:
        out.write(f"{channel.prefix}: {alert.severity} {alert.title}\n")
    return SendResult(message_id=f"memo-{alert.fingerprint}")
