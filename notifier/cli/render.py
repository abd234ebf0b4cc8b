"""``notifier render``: show exactly what a channel would send for an alert, sending nothing.

The alert comes from the same inputs as ``send`` (flags, stdin JSON, ``--file``) or from an
Alertmanager webhook notification (``--alertmanager FILE``: its alerts as one group, sent
as one message). Each message is printed part by part with its size in the provider's
unit and limit; ``--json`` prints the same as data, request bodies included.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from notifier.cli.main import OK, UsageError
from notifier.cli.send import add_alert_flags, read_alerts

if TYPE_CHECKING:
    from notifier.dispatcher import Dispatcher
    from notifier.groups import AlertGroup
    from notifier.kinds import Part
    from notifier.models import Alert


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "render",
        parents=[common],
        help="print what a channel would send for an alert; send nothing",
        description="Render an alert (from flags, JSON on stdin, --file, or an Alertmanager "
        "notification) exactly as CHANNEL would send it, part by part with each part's size "
        "and the provider's limit. Nothing is sent.",
    )
    p.add_argument("--channel", required=True, metavar="NAME", help="the channel to render for")
    add_alert_flags(p, file_help="render every alert in a JSON-lines file")
    p.add_argument(
        "--alertmanager",
        metavar="FILE",
        help="an Alertmanager webhook notification (JSON; '-' for stdin), rendered as one group",
    )
    p.add_argument("--json", action="store_true", help="print the messages as JSON")
    p.set_defaults(handler=run)


def _alertmanager(path: str) -> AlertGroup:
    from notifier.alertmanager import parse_notification

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    try:
        return parse_notification(json.loads(text))
    except ValueError as exc:
        raise UsageError(f"{path}: not an Alertmanager notification: {exc}") from None


def _inputs(args: argparse.Namespace) -> list[Alert | AlertGroup]:
    if args.alertmanager:
        return [_alertmanager(args.alertmanager)]
    alerts, problems = read_alerts(
        args, nothing="give --title, --file, --alertmanager, or an alert as JSON on stdin"
    )
    if problems:
        raise UsageError("; ".join(problems))
    return list(alerts)


def _dispatcher(args: argparse.Namespace) -> Dispatcher:
    import attrs

    from notifier.config import load_config
    from notifier.dispatcher import Dispatcher
    from notifier.plugins import PluginHost

    host = PluginHost.load()
    config = load_config(getattr(args, "config", None), host)
    # Rendering delivers nothing, so it neither opens nor writes the outbox.
    return Dispatcher(attrs.evolve(config, outbox=None), host=host)


def run(args: argparse.Namespace) -> int:
    from notifier.cli.output import print_json
    from notifier.redact import redact
    from notifier.terminal import visible

    inputs = _inputs(args)
    with _dispatcher(args) as dispatcher:
        if args.channel not in dispatcher.channels:
            known = ", ".join(sorted(dispatcher.channels)) or "none"
            raise UsageError(f"no channel named {args.channel!r} (configured: {known})")
        kind = dispatcher.channels[args.channel].spec.kind
        rendered = [(_title(item), dispatcher.preview(args.channel, item)) for item in inputs]
    if args.json:
        print_json(
            [
                {
                    "channel": args.channel,
                    "kind": kind,
                    "alert": title,
                    "parts": [part.to_dict() for part in parts],
                }
                for title, parts in rendered
            ]
        )
        return OK
    for title, parts in rendered:
        print(visible(f"== {args.channel} ({kind}): {title!r}: {len(parts)} message(s)"))
        for index, part in enumerate(parts, 1):
            print(_heading(part, index, len(parts)))
            # Alert text is anyone's: no escape sequence of it reaches the terminal.
            print(visible(redact(part.content)))
    return OK


def _title(item: Alert | AlertGroup) -> str:
    """The title of an alert, or of a group's message."""
    from notifier.groups import AlertGroup
    from notifier.messages import group_message

    if isinstance(item, AlertGroup):
        return group_message(item, item.alerts, item.truncated_alerts).title
    return item.title


def _heading(part: Part, index: int, total: int) -> str:
    limit = f" of {part.limit}" if part.limit is not None else " (no limit)"
    return f"-- part {index}/{total}: {part.size}{limit} {part.unit}"
