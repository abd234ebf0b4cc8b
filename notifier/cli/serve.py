"""``notifier serve``: receive alerts over HTTP, accept them durably, deliver them."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from notifier.cli.main import OK

# How long a stopping server waits for requests in flight before it exits anyway.
DRAIN_SECONDS = 30.0


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
    p.add_argument("--threads", type=int, default=8, help="requests handled at once (default: 8)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from waitress import wasyncore
    from waitress.server import create_server

    from notifier.server import create_app
    from notifier.server.settings import parse_listen

    app = create_app(getattr(args, "config", None), listen=args.listen)
    try:
        host, port = parse_listen(app.settings.listen)
        server: Any = create_server(
            app, host=host, port=port, threads=max(args.threads, 1), ident="notifier"
        )
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        bound = server.socket.getsockname()
        print(
            f"notifier serve: listening on http://{bound[0]}:{bound[1]}, outbox "
            f"{app.engine.store.path}",
            file=sys.stderr,
            flush=True,
        )
        _serve(server, stopping, wasyncore)
    finally:
        app.close()
    print("notifier serve: stopped; queued deliveries stay queued", file=sys.stderr)
    return OK


def _serve(server: Any, stopping: threading.Event, wasyncore: Any) -> None:
    """Run the server until ``stopping``; then stop accepting and finish what is in
    flight (for at most :data:`DRAIN_SECONDS`)."""
    deadline = None
    while True:
        wasyncore.loop(timeout=0.2, map=server._map, use_poll=True, count=1)
        if not stopping.is_set():
            continue
        if deadline is None:
            deadline = time.monotonic() + DRAIN_SECONDS
            wasyncore.dispatcher.close(server)  # the listening socket only
        busy = any(
            getattr(ch, "requests", None) or getattr(ch, "total_outbufs_len", 0)
            for ch in list(server._map.values())
        )
        if not busy or time.monotonic() > deadline:
            break
    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all(server._map)
