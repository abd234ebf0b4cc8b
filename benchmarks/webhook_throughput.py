"""Scenarios 1 and 2: webhook deliveries through the dispatcher vs plain requests code.

1. *sequential*: one webhook channel, no added latency. ``Dispatcher.dispatch`` per
   alert, and ``Dispatcher.deliver`` per alert, against a bare ``requests.Session`` loop
   posting the very same JSON bodies (and ``Idempotency-Key`` headers) to the same sink.
2. *fan-out*: ten webhook channels, 20 ms added per answer, 100 alerts routed to all
   ten (1,000 deliveries) by one ``dispatch_many`` call, against a plain
   ``ThreadPoolExecutor`` with as many threads as the dispatcher has workers in all
   (``workers`` per channel lane x 10 channels), each thread with its own session.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import requests

from benchmarks.measure import (
    Figure,
    Sample,
    interleaved,
    rate_figure,
    sample_details,
    timed,
)
from benchmarks.scenario import Outcome, Settings
from benchmarks.sink import Sink
from notifier.dispatcher import Dispatcher
from notifier.models import Alert, DeliveryContext, delivery_key

SEQUENTIAL_TARGET = 0.85
FANOUT_TARGET = 0.8
FANOUT_CHANNELS = 10
FANOUT_LATENCY = 0.020
DURABLE_TARGET = 0.7
BASELINES = {"bare": "bare requests.Session loop", "dispatch": "in-memory dispatch(), same rounds"}

# Extra scenario-1 variants: name -> (factory(url, count, stack, workdir), label).
Extra = dict[str, tuple[Callable[..., Callable[[], Sample]], str]]


def make_alerts(count: int, prefix: str = "disk") -> list[Alert]:
    """Realistically sized alerts (title, body, labels, an annotation), each with its own
    fingerprint: repeats of one alert would be coalesced or deduplicated by the outbox."""
    return [
        Alert(
            title=f"{prefix} almost full on db{i % 50}",
            body=f"/data{i} is 9{i % 10}% used; 4.1 GB left",
            severity=("warning", "critical")[i % 2],
            labels={"host": f"db{i % 50}", "mount": f"/data{i}", "team": "storage"},
            annotations={"runbook": "https://runbooks.example.com/disk-full"},
            source="prometheus",
        )
        for i in range(count)
    ]


def write_config(
    directory: Path, channels: dict[str, str], workers: int = 8, extra: str = ""
) -> Path:
    """A config with one webhook channel per ``name: url``, one route to all of them,
    and ``extra`` TOML appended."""
    lines = [f"[dispatcher]\nworkers = {workers}\n"]
    for name, url in channels.items():
        lines.append(f'[channels.{name}]\nkind = "webhook"\nurl = "{url}"\n')
    names = ", ".join(json.dumps(n) for n in channels)
    lines.append(f"[[routes]]\nchannels = [{names}]\n{extra}")
    path = directory / "notifier.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def wire_body(dispatcher: Dispatcher, channel: str, alert: Alert) -> tuple[dict[str, Any], str]:
    """The JSON body and idempotency key the webhook channel sends for ``alert``."""
    key = delivery_key(alert, channel)
    context = DeliveryContext(idempotency_key=key)
    return dispatcher.channels[channel].channel.body(alert, context), key


def bare_session() -> requests.Session:
    # trust_env off, as the notifier's client has it: with it on, requests re-reads
    # proxy variables and ~/.netrc on every request, which would flatter the notifier.
    session = requests.Session()
    session.trust_env = False
    return session


def bare_post(session: requests.Session, url: str, body: dict[str, Any], key: str) -> None:
    response = session.post(url, json=body, headers={"Idempotency-Key": key}, timeout=10)
    if response.status_code != 200 or response.json().get("errcode") != 0:
        raise RuntimeError(f"sink answered {response.status_code}: {response.text[:200]}")


def _check(receipts: list[Any]) -> None:
    failed = [r for r in receipts if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} deliveries failed, first: {failed[0].error}")


def sequential(settings: Settings, workdir: Path, extra: Extra | None = None) -> Outcome:
    """Scenario 1. ``extra`` adds variants compared with ``dispatch`` (the durable path)."""
    count = settings.pick(quick=150, full=400)
    # Many short rounds: single rounds on a shared VM range from 0.6x to 1.2x, and the
    # median of 21 moves less from run to run than the median of 11 longer ones.
    rounds = settings.pick(quick=4, full=21)
    alerts = make_alerts(count)
    with Sink() as sink, contextlib.ExitStack() as stack:
        url = sink.url("hook")
        config = write_config(workdir, {"hook": url})
        dispatcher = stack.enter_context(Dispatcher.from_config(config))
        wire = [wire_body(dispatcher, "hook", a) for a in alerts]
        session = bare_session()
        lean = _lean_client(sink.port, [json.dumps(b).encode() for b, _ in wire])

        def run_bare() -> None:
            for body, key in wire:
                bare_post(session, url, body, key)

        def run_dispatch() -> None:
            for alert in alerts:
                _check(dispatcher.dispatch(alert))

        def run_deliver() -> None:
            for alert in alerts:
                _check([dispatcher.deliver("hook", alert)])

        variants: dict[str, Callable[[], Sample]] = {
            "bare": lambda: timed(count, run_bare),
            "dispatch": lambda: timed(count, run_dispatch),
            "deliver": lambda: timed(count, run_deliver),
            "lean": lambda: timed(count, lean),
        }
        for name, (make, _) in (extra or {}).items():
            variants[name] = make(url, count, stack, workdir / name)
        before, started = sink.stats(), time.perf_counter()
        results = interleaved(variants, rounds)
        sink_load = _sink_load(sink, before, started)
        session.close()

    def figure(
        name: str, label: str, target: float | None, note: str = "", against: str = "bare"
    ) -> Figure:
        return rate_figure(
            "1-sequential", label, results, name, against, BASELINES[against], target, note
        )

    figures = [
        figure("dispatch", "dispatch() per alert, 1 webhook channel", SEQUENTIAL_TARGET),
        figure("deliver", "deliver() per alert, 1 webhook channel", SEQUENTIAL_TARGET),
    ]
    for name, (_, label) in (extra or {}).items():
        figures.append(figure(name, label, DURABLE_TARGET, against="dispatch"))
    figures.append(
        figure(
            "lean",
            "sink headroom: lean http.client loop (no target)",
            None,
            note=f"sink busy {sink_load:.0%} of one core over the whole scenario",
        )
    )
    details = {
        "alerts_per_round": count,
        "rounds": rounds,
        **sample_details(results, "bare"),
        "sink_cpu_share": round(sink_load, 3),
    }
    return Outcome(figures, details)


def fanout(settings: Settings, workdir: Path) -> Outcome:
    """Scenario 2."""
    alerts = make_alerts(1000 // FANOUT_CHANNELS, prefix="fan-out")
    rounds = settings.pick(quick=2, full=9)
    workers = settings.fanout_workers
    threads = workers * FANOUT_CHANNELS
    deliveries = len(alerts) * FANOUT_CHANNELS
    with Sink(latency=FANOUT_LATENCY) as sink:
        urls = {f"hook{i}": sink.url(f"hook/{i}") for i in range(FANOUT_CHANNELS)}
        config = write_config(workdir, urls, workers=workers)
        with (
            Dispatcher.from_config(config) as dispatcher,
            ThreadPoolExecutor(threads, thread_name_prefix="bare") as pool,
        ):
            jobs = [
                (urls[name], *wire_body(dispatcher, name, alert))
                for alert in alerts
                for name in urls
            ]
            local = threading.local()
            sessions: list[requests.Session] = []

            def post(url: str, body: dict[str, Any], key: str) -> None:
                session = getattr(local, "session", None)
                if session is None:
                    session = local.session = bare_session()
                    sessions.append(session)
                bare_post(session, url, body, key)

            def run_pool() -> None:
                futures = [pool.submit(post, *job) for job in jobs]
                wait(futures)
                for future in futures:
                    future.result()

            def run_dispatch() -> None:
                _check(dispatcher.dispatch_many(alerts))

            variants = {
                "pool": lambda: timed(deliveries, run_pool),
                "dispatch_many": lambda: timed(deliveries, run_dispatch),
            }
            before, started = sink.stats(), time.perf_counter()
            results = interleaved(variants, rounds)
            sink_load = _sink_load(sink, before, started)
            for session in sessions:
                session.close()

    ideal = threads / FANOUT_LATENCY
    figures = [
        rate_figure(
            "2-fan-out",
            f"dispatch_many, {FANOUT_CHANNELS} channels x {len(alerts)} alerts, "
            f"{FANOUT_LATENCY * 1000:g} ms latency",
            results,
            "dispatch_many",
            "pool",
            f"ThreadPoolExecutor({threads}), per-thread sessions",
            FANOUT_TARGET,
            note=f"latency-bound ceiling {ideal:,.0f}/s; sink busy {sink_load:.0%} of a core",
        )
    ]
    details = {
        "deliveries_per_round": deliveries,
        "workers_per_channel": workers,
        "threads": threads,
        "rounds": rounds,
        **sample_details(results, "pool"),
        "latency_bound_ceiling": ideal,
        "sink_cpu_share": round(sink_load, 3),
    }
    return Outcome(figures, details)


def _lean_client(port: int, bodies: list[bytes]) -> Callable[[], None]:
    """A minimal keep-alive client, to show how fast the sink answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}

    def run() -> None:
        for body in bodies:
            connection.request("POST", "/hook", body=body, headers=headers)
            connection.getresponse().read()

    return run


def _sink_load(sink: Sink, before: dict[str, float], started: float) -> float:
    after = sink.stats()
    return (after["cpu_seconds"] - before["cpu_seconds"]) / (time.perf_counter() - started)
