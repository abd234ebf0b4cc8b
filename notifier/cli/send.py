"""``notifier send``: one alert from flags or stdin, or many from a JSON-lines file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from notifier.cli.main import FAILED, OK, USAGE, UsageError
from notifier.errors import OutboxError

if TYPE_CHECKING:
    from notifier.dispatcher import Dispatcher
    from notifier.models import Alert, Receipt

# Alerts per dispatch_many call when sending a file: big enough to keep every worker
# busy, small enough that the progress bar moves.
BATCH = 200


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "send",
        parents=[common],
        help="dispatch alerts and print the receipts",
        description="Dispatch one alert (from flags, or as JSON on stdin) or many (--file, "
        "JSON lines) through the configured routes. Exit 0 when every delivery succeeded, "
        "1 when any failed, 2 for usage or configuration errors.",
    )
    add_alert_flags(p, file_help="send every alert in a JSON-lines file")
    p.add_argument("--json", action="store_true", help="print receipts as a JSON array")
    p.set_defaults(handler=run, receipts_shown=True)


def add_alert_flags(p: argparse.ArgumentParser, *, file_help: str) -> None:
    """The flags naming the alert(s) a command works on, shared by ``send`` and ``render``."""
    p.add_argument("--title", help="alert title; with it, the alert comes from these flags")
    p.add_argument("--body", default="", help="alert text")
    p.add_argument(
        "--severity", default="warning", choices=("critical", "error", "warning", "info")
    )
    p.add_argument("--status", default="firing", choices=("firing", "resolved"))
    p.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a label (repeatable)"
    )
    p.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an annotation (repeatable)",
    )
    p.add_argument("--link", action="append", default=[], metavar="URL", help="a link (repeatable)")
    p.add_argument("--fingerprint", help="identify the alert (default: hash of title and labels)")
    p.add_argument("--file", metavar="PATH", help=file_help)


def read_alerts(args: argparse.Namespace, *, nothing: str) -> tuple[list[Alert], list[str]]:
    """The alerts the flags, ``--file`` or stdin give, and one message per invalid line of
    the file; :class:`UsageError` ``nothing`` when none of them gives any."""
    if args.title is not None:
        return [_from_flags(args)], []
    if args.file:
        return _read_file(args.file)
    if not sys.stdin.isatty():
        return [_from_stdin()], []
    raise UsageError(nothing)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _from_flags(args: argparse.Namespace) -> Alert:

    try:
        return _alert_from_flags(args)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _alert_from_flags(args: argparse.Namespace) -> Alert:
    from notifier.models import Alert

    return Alert(
        title=args.title,
        body=args.body,
        severity=args.severity,
        status=args.status,
        labels=_pairs(args.label, "--label"),
        annotations=_pairs(args.annotation, "--annotation"),
        links=args.link,
        fingerprint=args.fingerprint or "",
        source="cli",
    )


def _alert(raw: bytes, where: str) -> Alert:
    """The alert one JSON text holds; :class:`NotifierError` naming what is wrong."""
    from notifier.errors import InvalidAlert
    from notifier.models import Alert

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidAlert(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None
    if not text.strip():
        raise InvalidAlert(f"{where} is empty: expected an alert as a JSON object")
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidAlert("not an alert: JSON nested too deeply") from None
    except ValueError as exc:
        raise InvalidAlert(f"not valid JSON: {exc}") from None
    return Alert.from_dict(data)


def _read_file(path: str) -> tuple[list[Alert], list[str]]:
    """Every valid alert in the file, and one message per invalid line."""
    from notifier.errors import NotifierError

    alerts: list[Alert] = []
    problems: list[str] = []
    name = "stdin" if path == "-" else path
    try:
        # Bytes, decoded line by line: one line that is not UTF-8 costs only that line.
        handle = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")  # a byte order mark
            if not line.strip():
                continue
            try:
                alerts.append(_alert(line, f"line {number}"))
            except NotifierError as exc:
                problems.append(f"{name}:{number}: {exc}")
    return alerts, problems


def _from_stdin() -> Alert:
    from notifier.errors import NotifierError

    raw = sys.stdin.buffer.read()
    if not raw.strip():
        raise UsageError(
            "stdin is empty: expected one alert as a JSON object (or give --title or --file)"
        )
    try:
        return _alert(raw, "stdin")
    except NotifierError as exc:
        raise UsageError(f"stdin: {exc}") from None


def _batches(alerts: list[Alert]) -> Iterator[list[Alert]]:
    for start in range(0, len(alerts), BATCH):
        yield alerts[start : start + BATCH]


def run(args: argparse.Namespace) -> int:
    from notifier.cli.output import Progress

    alerts, problems = read_alerts(
        args, nothing="give --title, --file, or an alert as JSON on stdin"
    )
    for problem in problems:
        print(f"notifier send: skipped {problem}", file=sys.stderr)
    if not alerts and not problems:
        # An empty batch (a cron job that found nothing) is not an error.
        print(
            f"notifier send: no alerts in {'stdin' if args.file == '-' else args.file}",
            file=sys.stderr,
        )
        return OK

    from notifier.dispatcher import undurable

    receipts: list[tuple[Alert, Receipt]] = []
    progress = Progress(len(alerts))
    dispatcher, not_durable = _open_dispatcher(getattr(args, "config", None))
    # Queued for the Celery workers is done, as far as sending goes; queued in the outbox
    # is still waiting for a retry.
    handed_over = dispatcher.celery is not None
    with dispatcher:
        unrouted = 0
        for batch in _batches(alerts):
            # dispatch_many returns receipts in alert order, one per chosen channel.
            counts = [len(dispatcher.targets(a)) for a in batch]
            owners = [a for a, n in zip(batch, counts, strict=True) for _ in range(n)]
            unrouted += counts.count(0)
            receipts.extend(zip(owners, dispatcher.dispatch_many(batch), strict=True))
            progress.advance(len(batch))
        progress.finish()
    if not_durable:
        receipts = [(a, undurable(r, not_durable)) for a, r in receipts]
    if unrouted:
        print(
            f"notifier send: {unrouted} alert(s) matched no route and went nowhere", file=sys.stderr
        )
    _print(receipts, as_json=args.json, many=len(alerts) > 1)
    not_queued = [r for _, r in receipts if handed_over and r.outcome.value == "failed"]
    if not_queued:
        print(f"notifier send: error: {not_queued[0].error}", file=sys.stderr)
    if problems:
        return USAGE
    done = [r.ok or (handed_over and r.outcome.value == "queued") for _, r in receipts]
    return OK if not unrouted and all(done) else FAILED


def _open_dispatcher(config: str | None) -> tuple[Dispatcher, str | None]:
    """The configured dispatcher, or, when its outbox cannot be opened (a full disk, an
    unwritable directory), one that sends directly: an alert sent without retries beats
    an alert not sent. The second value says why the receipts are not durable."""
    from notifier.dispatcher import Dispatcher

    try:
        return Dispatcher.from_config(config), None
    except OutboxError as exc:
        print(
            f"notifier send: {exc}; sending directly, without the outbox: not durable, not retried",
            file=sys.stderr,
        )
        return Dispatcher.from_config(config, outbox=False), str(exc)


def _print(receipts: list[tuple[Alert, Receipt]], *, as_json: bool, many: bool) -> None:
    from notifier.cli.output import print_json, table

    if as_json:
        print_json([r.to_dict() for _, r in receipts])
        return
    headers = ["CHANNEL", "OUTCOME", "ATTEMPTS", "LATENCY", "MESSAGE ID", "ERROR"]
    rows = [
        [r.channel, r.outcome.value, r.attempts, f"{r.latency_ms:.1f} ms", r.message_id, r.error]
        for _, r in receipts
    ]
    if any(r.next_attempt_at is not None for _, r in receipts):
        headers.insert(5, "NEXT ATTEMPT")
        for row, (_, r) in zip(rows, receipts, strict=True):
            row.insert(5, _local_time(r.next_attempt_at))
    if many:
        headers.insert(0, "ALERT")
        for row, (alert, _) in zip(rows, receipts, strict=True):
            row.insert(0, alert.title if len(alert.title) <= 32 else alert.title[:31] + "…")
    table(headers, rows)


def _local_time(at: float | None) -> str:
    """``at`` (Unix time) as the local time of day, with the date unless it is today."""
    import time

    if at is None:
        return ""
    when = time.localtime(at)
    same_day = time.localtime()[:3] == when[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", when)
