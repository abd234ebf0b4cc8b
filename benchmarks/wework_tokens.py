"""Scenario 3: WeCom direct mode, cold token cache, 32 senders at once.

Each round starts a fresh fake WeCom (a new API root, so no token is cached anywhere in
the process), builds a dispatcher with one ``wework`` channel sending application
messages, and releases 32 threads together, each delivering one alert. The figure is
the largest number of ``gettoken`` requests the fake saw in any round: exactly one
means every sender waited for, and shared, the first one's token.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

from benchmarks.measure import Figure
from benchmarks.scenario import Outcome, Settings
from benchmarks.webhook_throughput import make_alerts
from notifier.dispatcher import Dispatcher
from notifier.models import Receipt

SENDERS = 32
TARGET = 1


def write_config(directory: Path, wecom: object) -> Path:
    path = directory / "wework.toml"
    path.write_text(
        f"[dispatcher]\nworkers = {SENDERS}\n\n"
        "[channels.wecom]\n"
        'kind = "wework"\n'
        f"api_root = {json.dumps(wecom.api_root)}\n"  # type: ignore[attr-defined]
        f"corp_id = {json.dumps(wecom.corp_id)}\n"  # type: ignore[attr-defined]
        f"secret = {json.dumps(wecom.secret)}\n"  # type: ignore[attr-defined]
        f"agent_id = {wecom.agent_id}\n"  # type: ignore[attr-defined]
        'to_user = ["zhangsan"]\n',
        encoding="utf-8",
    )
    return path


def one_round(workdir: Path) -> tuple[int, float, int]:
    """Token requests, wall seconds and failed deliveries of one cold start."""
    from notifier_wework.testing import FakeWeCom

    alerts = make_alerts(SENDERS, prefix="token")
    with FakeWeCom() as wecom, Dispatcher.from_config(write_config(workdir, wecom)) as dispatcher:
        gate = threading.Barrier(SENDERS + 1)
        receipts: list[Receipt] = []

        def send(index: int) -> None:
            gate.wait()
            receipts.append(dispatcher.deliver("wecom", alerts[index]))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
        for thread in threads:
            thread.start()
        gate.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        failed = sum(1 for r in receipts if not r.ok)
        return wecom.token_requests, elapsed, failed


def run(settings: Settings, workdir: Path) -> Outcome:
    try:
        import notifier_wework.testing  # noqa: F401
    except ImportError:
        return Outcome([], pending="the notifier-wework plugin is not installed")
    rounds = settings.pick(quick=2, full=10)
    results = [one_round(workdir) for _ in range(rounds)]
    tokens = [r[0] for r in results]
    failed = sum(r[2] for r in results)
    figure = Figure(
        "3-wework-tokens",
        f"gettoken requests, {SENDERS} senders, cold cache (worst of {rounds} rounds)",
        max(tokens),
        "requests",
        target=TARGET,
        compare="value",
        op="==",
        note=f"without a shared single-flight cache each sender would fetch: {SENDERS}",
    )
    delivered = Figure(
        "3-wework-tokens",
        "deliveries that succeeded in those rounds",
        rounds * SENDERS - failed,
        "deliveries",
        target=rounds * SENDERS,
        compare="value",
        op="==",
    )
    details = {
        "rounds": rounds,
        "senders": SENDERS,
        "token_requests_by_round": tokens,
        "burst_seconds_median": round(statistics.median(r[1] for r in results), 4),
        "failed_deliveries": failed,
    }
    return Outcome([figure, delivered], details)
