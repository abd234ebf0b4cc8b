"""waitress, as ``notifier serve`` runs it: one place for its settings."""

from __future__ import annotations

import threading
import time
from typing import Any

from waitress import wasyncore  # type: ignore[import-untyped]
from waitress.server import create_server  # type: ignore[import-untyped]

__all__ = ["BODY_SLACK", "run_until", "waitress_server"]

# waitress buffers a body before the application sees it: it refuses one this many times
# over the application's limit outright (its own 413, as soon as Content-Length is read),
# so no client can make it buffer more; between the two, the application answers 413.
BODY_SLACK = 4


def waitress_server(app: Any, host: str, port: int, *, threads: int = 16) -> Any:
    """A waitress server for ``app`` (a :class:`~notifier.server.app.NotifierApp`) on
    ``host:port`` (port 0: any free port), not yet running."""
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="notifier",
        max_request_body_size=app.settings.max_body_bytes * BODY_SLACK,
        clear_untrusted_proxy_headers=True,
    )


def run_until(server: Any, stopping: threading.Event, *, drain_seconds: float = 30.0) -> None:
    """Serve until ``stopping`` is set; then stop accepting, finish the requests in
    flight (for at most ``drain_seconds``) and close every connection."""
    deadline = None
    while True:
        wasyncore.loop(timeout=0.1, map=server._map, use_poll=True, count=1)
        if not stopping.is_set():
            continue
        if deadline is None:
            deadline = time.monotonic() + drain_seconds
            wasyncore.dispatcher.close(server)  # the listening socket only
        # In flight: a request partly received (``request``), being served
        # (``requests``) or an answer not yet sent; idle keep-alive connections are not.
        busy = any(
            getattr(ch, "request", None) is not None
            or getattr(ch, "requests", None)
            or getattr(ch, "total_outbufs_len", 0)
            for ch in list(server._map.values())
        )
        if not busy or time.monotonic() > deadline:
            break
    server.task_dispatcher.shutdown(timeout=5)
    wasyncore.close_all(server._map)
