"""``notifier worker``: deliver what the outbox holds, until stopped or (``--once``) done."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from notifier.cli.main import FAILED, OK, UsageError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "worker",
        parents=[common],
        help="deliver queued alerts from the outbox (retries, backlogs, rate-limited bursts)",
        description="Deliver due deliveries from the [outbox] until stopped (SIGINT or "
        "SIGTERM finish the delivery in hand, then exit). With --once, deliver everything "
        "due now, waiting for rate limits and provider pauses, then exit: 0 when nothing "
        "failed permanently, 1 otherwise. With [celery] in the configuration, run a Celery "
        "worker that delivers the queue's tasks until stopped (docs/scale-out.md).",
    )
    p.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    p.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="with [celery]: deliveries this worker runs at once (default: [celery] concurrency)",
    )
    p.add_argument("--json", action="store_true", help="print the --once summary as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from notifier.config import load_config
    from notifier.dispatcher import Dispatcher
    from notifier.plugins import PluginHost

    host = PluginHost.load()
    config = load_config(getattr(args, "config", None), host)
    if config.celery is not None:
        return _celery(config.celery, config.file, args)
    if args.concurrency is not None:
        raise UsageError("--concurrency goes with [celery]; the outbox's is [outbox] workers")
    with Dispatcher.from_config(getattr(args, "config", None), host=host) as dispatcher:
        engine = dispatcher.outbox
        if engine is None:
            raise UsageError(
                f"{dispatcher.config.file} has no [outbox] table: the worker delivers what "
                f"the outbox holds (add [outbox] with a path, see docs/outbox.md)"
            )
        if args.once:
            engine.recover()
            report = engine.drain(until_idle=True, on_wait=_say)
            return _summary(report.outcomes, engine.store.counts(), as_json=args.json)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        print(f"notifier worker: delivering from {engine.store.path}", file=sys.stderr)
        engine.run_forever(stop)
    return OK


def _celery(settings: Any, file: str, args: argparse.Namespace) -> int:
    from notifier.celery.admin import run_worker

    if args.once:
        raise UsageError(
            "--once drains the [outbox]; a [celery] worker delivers until stopped "
            "(notifier queue shows what is left)"
        )
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency must be 1 or more, got {args.concurrency}")
    run_worker(settings, file, concurrency=args.concurrency, verbosity=getattr(args, "verbose", 0))
    return OK


def _say(line: str) -> None:
    print(f"notifier worker: {line}", file=sys.stderr, flush=True)


def _summary(
    outcomes: Mapping[str, int], counts: Mapping[str, Mapping[str, int]], *, as_json: bool
) -> int:
    from notifier.cli.output import print_json

    queued = {ch: n for ch, states in counts.items() if (n := states.get("pending", 0))}
    dead = sum(states.get("dead", 0) for states in counts.values())
    if as_json:
        print_json({"outcomes": outcomes, "still_queued": queued, "dead_letters": dead})
    else:
        done = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        print(f"delivered from the outbox: {done or 'nothing was due'}")
        if queued:
            waiting = ", ".join(f"{ch}: {n}" for ch, n in sorted(queued.items()))
            print(f"still queued for later: {waiting}")
        if dead:
            print(f"dead letters: {dead} (notifier queue --dead)")
    return FAILED if outcomes.get("failed") else OK
