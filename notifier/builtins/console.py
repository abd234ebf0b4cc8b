"""The ``console`` channel: print each alert to the terminal."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import attrs

from notifier import hookimpl
from notifier.channelhooks import ChannelHooks
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.render import byte_len, render_markdown, render_text
from notifier.templates import message
from notifier.terminal import visible

_STREAMS = {"stdout": lambda: sys.stdout, "stderr": lambda: sys.stderr}
# One lock for every console channel: two channels printing at once must not interleave.
_PRINT_LOCK = threading.Lock()


@attrs.define
class ConsoleChannel:
    name: str
    stream: str
    format: str

    @property
    def kind(self) -> str:
        return "console"

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        self.write(self.line(alert, delivery))
        return SendResult()

    def line(self, alert: Alert, delivery: DeliveryContext) -> str:
        """What a send prints (``notifier render`` shows it)."""
        text = message(alert, delivery)
        if text is None:
            text = render_markdown(alert) if self.format == "markdown" else render_text(alert)
        if delivery.mentions:
            text += "\n" + " ".join(m if m.startswith("@") else f"@{m}" for m in delivery.mentions)
        return f"[{self.name}] {text}"

    def write(self, text: str) -> None:
        out: TextIO = _STREAMS[self.stream]()
        text = visible(text)  # alert text is anyone's: no escape sequence reaches the terminal
        with _PRINT_LOCK:
            out.write(text.rstrip("\n") + "\n\n")
            out.flush()

    def close(self) -> None:
        pass


def preview(channel: ConsoleChannel, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    text = channel.line(alert, delivery)
    return [Part(text, text, byte_len(text))]


def build(spec: ChannelSpec, context: BuildContext) -> ConsoleChannel:
    return ConsoleChannel(spec.name, spec.options["stream"], spec.options["format"])


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="console",
            build=build,
            description="Print each alert to the terminal (no network).",
            preview=preview,
            options=(
                Option(
                    "stream", choices=("stdout", "stderr"), default="stdout", help="where to print"
                ),
                Option(
                    "format",
                    choices=("text", "markdown"),
                    default="text",
                    help="how to render the alert",
                ),
            ),
        )
    ]


hooks = ChannelHooks(sends=(ConsoleChannel,))
notifier_send = hooks.notifier_send
