"""``notifier serve``: receive alerts over HTTP, accept them durably, deliver them."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from notifier.cli.main import OK

# How long a stopping server waits for requests in flight before it exits anyway.
DRAIN_SECONDS = 30.0
# Requests handled at once (docs/serve.md#under-load): more let group commit gather more
# requests per transaction; each may hold a parsed body of up to max_body_bytes.
THREADS = 16


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "serve",
        parents=[common],
        help="receive alerts from Alertmanager, Grafana and HTTP clients; deliver them",
        description="Serve the HTTP API (docs/serve.md): accept alerts into the outbox "
        "([outbox], else the default one) and deliver them from this process. SIGTERM "
        "or SIGINT stop accepting, finish the requests in flight and exit; queued "
        "deliveries stay queued.",
    )
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (default: [server] listen)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help=f"requests handled at once (default: {THREADS})",
    )
    p.add_argument(
        "--no-deliver",
        dest="deliver",
        action="store_false",
        help="only accept into the outbox; notifier worker processes deliver",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from notifier.server import create_app
    from notifier.server.serving import run_until, waitress_server
    from notifier.server.settings import parse_listen

    deliver: bool = getattr(args, "deliver", True)
    app = create_app(getattr(args, "config", None), listen=args.listen, deliver=deliver)
    try:
        host, port = parse_listen(app.settings.listen)
        server = waitress_server(app, host, port, threads=max(args.threads, 1))
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        bound = server.socket.getsockname()
        if app.celery is not None:
            into = f"Celery queue {app.celery.settings.queue!r} ([celery])"
        else:
            which = (
                "[outbox]" if app.dispatcher.config.outbox is not None else "default, no [outbox]"
            )
            into = f"outbox {app.engine.path} ({which})"
        print(
            f"notifier serve: listening on http://{bound[0]}:{bound[1]}, {into}"
            + ("" if deliver else "; not delivering"),
            file=sys.stderr,
            flush=True,
        )
        run_until(server, stopping, drain_seconds=DRAIN_SECONDS)
    finally:
        app.close()
    print("notifier serve: stopped; queued deliveries stay queued", file=sys.stderr)
    return OK
