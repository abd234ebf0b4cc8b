"""``notifier queue``: what the outbox (or, with ``[celery]``, the shared Redis state)
holds; dead letters listed, retried or purged."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from notifier.cli.main import FAILED, OK, UsageError

if TYPE_CHECKING:
    from notifier.outbox.records import Delivery


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "queue",
        parents=[common],
        help="show the outbox: counts by channel and state; list, retry or purge dead letters",
        description="Without options: how many deliveries each channel has in each state. "
        "--dead lists dead letters with their last error (secrets masked); --retry ID... "
        "queues dead letters again, --purge ID... deletes them (--all for every one). With "
        "[celery]: queued, in retry and dead per channel, from the shared Redis state.",
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument("--dead", action="store_true", help="list dead letters")
    action.add_argument(
        "--retry", nargs="*", type=int, metavar="ID", help="queue dead letters again"
    )
    action.add_argument("--purge", nargs="*", type=int, metavar="ID", help="delete dead letters")
    p.add_argument("--all", action="store_true", help="with --retry or --purge: every dead letter")
    p.add_argument("--channel", help="with --dead: only this channel's")
    p.add_argument("--limit", type=int, default=100, help="with --dead: at most this many")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=run)


def _ids(values: list[int] | None, every: bool, flag: str) -> list[int] | None:
    if every and values:
        raise UsageError(f"{flag} takes IDs or --all, not both")
    if not every and not values:
        raise UsageError(f"{flag} needs dead-letter IDs (see --dead) or --all")
    return None if every else values


def run(args: argparse.Namespace) -> int:
    from notifier.config import load_config
    from notifier.outbox import OutboxStore
    from notifier.outbox.settings import settings_from_config
    from notifier.plugins import PluginHost

    if args.all and args.retry is None and args.purge is None:
        raise UsageError("--all goes with --retry or --purge")
    config = load_config(getattr(args, "config", None), PluginHost.load())
    if config.celery is not None:
        from notifier.cli.scaled import queue

        return queue(config.celery, args)
    settings = settings_from_config(config)
    if settings is None:
        raise UsageError(f"{config.file} has no [outbox] table: there is no outbox to show")
    if settings.memory:
        raise UsageError('the outbox is in memory (path = ":memory:"): nothing outlives a process')
    store = OutboxStore.open(
        settings.path,
        busy_timeout=settings.busy_timeout,
        file_mode=settings.file_mode,
        dir_mode=settings.dir_mode,
    )
    try:
        if args.retry is not None:
            ids = _ids(args.retry, args.all, "--retry")
            missing = _not_dead(store, ids)
            moved = store.retry_dead(time.time(), ids)
            text = f"{moved} dead letter(s) queued again"
            return _done({"retried": moved}, text, args.json, missing)
        if args.purge is not None:
            ids = _ids(args.purge, args.all, "--purge")
            missing = _not_dead(store, ids)
            gone = store.purge(ids=ids)
            return _done({"purged": gone}, f"{gone} dead letter(s) deleted", args.json, missing)
        if args.dead:
            return _dead(store, args)
        from notifier.identity import identities

        return _counts(store, args.json, store.waiting_elsewhere(identities(config.channels)))
    finally:
        store.close()


def _not_dead(store: Any, ids: list[int] | None) -> list[int]:
    """The ``ids`` that name no dead letter (unknown, or still queued or delivered)."""
    from notifier.outbox.records import DeliveryState

    if ids is None:
        return []
    found = store.get(list(ids))
    return [i for i in dict.fromkeys(ids) if i not in found or found[i].state != DeliveryState.DEAD]


def _done(data: dict[str, Any], text: str, as_json: bool, missing: list[int]) -> int:
    from notifier.cli.output import print_json

    if missing:
        data = {**data, "not_dead_letters": missing}
    if as_json:
        print_json(data)
    else:
        print(text)
    if not missing:
        return OK
    named = ", ".join(str(i) for i in missing)
    print(
        f"notifier queue: error: no dead letter with id {named} (notifier queue --dead lists them)",
        file=sys.stderr,
    )
    return FAILED


def _counts(store: Any, as_json: bool, elsewhere: list[tuple[str, str, int]]) -> int:
    from notifier.cli.output import print_json, table

    counts = store.counts()
    if as_json:
        others = [{"channel": c, "config": f, "waiting": n} for c, f, n in elsewhere]
        print_json({"path": store.path, "channels": counts, "other_configs": others})
        return OK
    states = ("pending", "inflight", "delivered", "dead")
    rows = [[ch, *(counts[ch].get(s, 0) for s in states)] for ch in sorted(counts)]
    print(f"outbox: {store.path}")
    table(["CHANNEL", *(s.upper() for s in states)], rows)
    if elsewhere:
        # Written by another configuration sharing the file: its process delivers them.
        print("\nwaiting for another configuration's process:")
        table(["CHANNEL", "WAITING", "CONFIG"], [[c, n, f] for c, f, n in elsewhere])
    return OK


def _dead(store: Any, args: argparse.Namespace) -> int:
    from notifier.cli.output import print_json, table

    letters = store.dead_letters(channel=args.channel, limit=args.limit)
    if args.json:
        print_json([{**d.to_dict(), "title": _title(d)} for d in letters])
        return OK
    now = time.time()
    rows = [
        [d.id, d.channel, d.attempts, _age(now - d.updated_at), _title(d), d.last_error]
        for d in letters
    ]
    table(["ID", "CHANNEL", "ATTEMPTS", "DIED", "ALERT", "LAST ERROR"], rows)
    return OK


def _title(delivery: Delivery) -> str:
    try:
        title = delivery.alert().title
    except ValueError:
        return "(unreadable)"
    return title if len(title) <= 40 else title[:39] + "…"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"
