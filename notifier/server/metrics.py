"""Prometheus metrics of ``notifier serve``, through ``prometheus_client``.

Every application has its own :class:`~prometheus_client.CollectorRegistry`, so two apps
in one process (tests, an embedding program) count apart. Counters and histograms are
fed by the server and by the plugin hooks ``notifier_delivery_finished`` and
``notifier_http_request``; the outbox's state (deliveries by channel and state, dead
letters, circuit state) is read from the outbox file at each scrape, so it is right
whichever process did the work.

Under a server with several processes (gunicorn), set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory before it starts: each process then writes its counters there and
``/metrics`` adds up every process's (``prometheus_client``'s multiprocess mode).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifier import hookimpl
from notifier.models import Alert, Outcome, Receipt

if TYPE_CHECKING:
    from notifier.http.events import RequestEvent
    from notifier.outbox.engine import OutboxDelivery

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CIRCUITS = ("closed", "open", "half_open")


class _OutboxCollector(Collector):
    """The outbox's state at scrape time."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine: OutboxDelivery | None = self.engine()
        if engine is None:
            return
        states = GaugeMetricFamily(
            "notifier_outbox_deliveries",
            "Deliveries the outbox holds, by channel and state",
            labels=["channel", "state"],
        )
        dead = GaugeMetricFamily(
            "notifier_dead_letters", "Deliveries that failed for good", labels=["channel"]
        )
        circuit = GaugeMetricFamily(
            "notifier_circuit_state",
            "1 for the state each channel's circuit breaker is in",
            labels=["channel", "state"],
        )
        try:
            counts = engine.delivery_counts()
            circuits = engine.circuit_states()
        except Exception as exc:  # a scrape reports what it can; the outbox may be busy
            log.warning("metrics: cannot read the outbox: %s", exc)
            return
        for channel, by_state in sorted(counts.items()):
            for state, number in sorted(by_state.items()):
                states.add_metric([channel, state], number)
            dead.add_metric([channel], by_state.get("dead", 0))
        for channel, current in sorted(circuits.items()):
            for state in _CIRCUITS:
                circuit.add_metric([channel, state], 1 if state == current else 0)
        yield states
        yield dead
        yield circuit


class Metrics:
    """The server's metrics; also a plugin object observing deliveries and requests."""

    def __init__(self, kinds: dict[str, str] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.kinds = kinds or {}
        self.engine: OutboxDelivery | None = None
        registry = self.registry
        self.alerts_received = Counter(
            "notifier_alerts_received",
            "Alerts accepted, by where they came from",
            ["source"],
            registry=registry,
        )
        self.http_answers = Counter(
            "notifier_http_requests",
            "Requests to the server, by endpoint and answer code",
            ["endpoint", "code"],
            registry=registry,
        )
        self.deliveries = Counter(
            "notifier_deliveries",
            "Delivery attempts, by channel, kind, outcome and reason",
            ["channel", "kind", "outcome", "reason"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "notifier_delivery_duration_seconds",
            "Time one delivery attempt took, by channel",
            ["channel"],
            registry=registry,
        )
        self.provider_requests = Counter(
            "notifier_provider_requests",
            "HTTP requests to providers, by channel, endpoint and answer code",
            ["channel", "endpoint", "code"],
            registry=registry,
        )
        self.token_fetches = Counter(
            "notifier_token_fetches",
            "Access-token requests to providers, by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        registry.register(_OutboxCollector(lambda: self.engine))

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            merged.register(_OutboxCollector(lambda: self.engine))
            return generate_latest(merged)
        return generate_latest(self.registry)

    # -- plugin hooks ----------------------------------------------------------------

    @hookimpl
    def notifier_delivery_finished(self, alert: Alert, receipt: Receipt) -> None:
        if receipt.outcome is Outcome.DELIVERED:
            reason = "sent"
        elif receipt.outcome is Outcome.DEDUPLICATED:
            reason = "duplicate"
        elif receipt.outcome is Outcome.QUEUED:
            reason = "retry_scheduled" if receipt.error else "waiting"
        else:
            reason = "gave_up"
        kind = receipt.kind or self.kinds.get(receipt.channel, "")
        self.deliveries.labels(receipt.channel, kind, receipt.outcome.value, reason).inc()
        if receipt.attempts:
            seconds = receipt.latency_ms / 1000
            self.delivery_seconds.labels(receipt.channel).observe(seconds)

    @hookimpl
    def notifier_http_request(self, event: RequestEvent) -> None:
        code = str(event.status) if event.status is not None else "none"
        self.provider_requests.labels(event.channel, event.endpoint, code).inc()
        if "token" in event.endpoint.lower():
            self.token_fetches.labels(event.channel, event.outcome).inc()
