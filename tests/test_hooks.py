"""The observation hooks: plugins that watch HTTP requests and finished deliveries.

Observers are ordinary plugins implementing ``notifier_http_request`` and
``notifier_delivery_finished``; they see every request attempt and every receipt, and a
failing observer can neither fail a delivery nor silence another observer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier import Alert, hookimpl
from notifier.clock import FakeClock
from notifier.config import parse_config
from notifier.dispatcher import Dispatcher
from notifier.http.events import RequestEvent
from notifier.models import Outcome, Receipt
from notifier.plugins import PluginHost
from notifier.testing import LocalServer, Response

TOKEN = "s3cr3t-hook-token-0042"


class Recorder:
    """An observer plugin that keeps what it is shown."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []
        self.finished: list[tuple[Alert, Receipt]] = []

    @hookimpl
    def notifier_http_request(self, event: RequestEvent) -> None:
        self.events.append(event)

    @hookimpl
    def notifier_delivery_finished(self, alert: Alert, receipt: Receipt) -> None:
        self.finished.append((alert, receipt))


class Broken:
    """An observer plugin whose every hook raises."""

    @hookimpl
    def notifier_http_request(self, event: RequestEvent) -> None:
        raise RuntimeError("metrics backend is down")

    @hookimpl
    def notifier_delivery_finished(self, alert: Alert, receipt: Receipt) -> None:
        raise RuntimeError("audit log is full")


@pytest.fixture
def receiver():
    with LocalServer() as server:
        server.route("POST", "/hooks/alerts", lambda request: {"id": "msg-1"})
        server.route("POST", "/hooks/refuse", lambda request: Response.from_json({}, 400))
        yield server


def dispatcher(host: PluginHost, channels: dict) -> Dispatcher:
    return Dispatcher(parse_config({"channels": channels}, host), host=host, clock=FakeClock())


def test_an_observer_sees_each_http_attempt_of_a_webhook_delivery_retries_included(receiver):
    recorder = Recorder()
    host = PluginHost.from_plugins([recorder])
    receiver.fail_next(1, status=429, retry_after=0)
    url = f"{receiver.root}hooks/alerts?token={TOKEN}"
    with dispatcher(host, {"hooks": {"kind": "webhook", "url": url}}) as d:
        [receipt] = d.dispatch(Alert("Disk almost full"))

    assert receipt.outcome is Outcome.DELIVERED
    assert [(e.attempt, e.status, e.outcome) for e in recorder.events] == [
        (1, 429, "retry"),
        (2, 200, "ok"),
    ]
    assert {(e.channel, e.method) for e in recorder.events} == {("hooks", "POST")}
    assert not any(TOKEN in repr(event) for event in recorder.events)


def test_channels_get_an_http_observer_only_when_a_plugin_observes_requests():
    assert PluginHost.from_plugins([]).observes_http is False
    assert PluginHost.from_plugins([Recorder()]).observes_http is True


def test_delivery_finished_is_called_once_per_receipt_failures_included(receiver, tmp_path: Path):
    recorder = Recorder()
    host = PluginHost.from_plugins([recorder])
    channels = {
        "audit": {"kind": "jsonl", "path": str(tmp_path / "audit.jsonl")},
        "refusing": {"kind": "webhook", "url": f"{receiver.root}hooks/refuse"},
    }
    alerts = [Alert("Disk almost full"), Alert("Replica lagging", severity="error")]
    with dispatcher(host, channels) as d:
        receipts = d.dispatch_many(alerts)

    assert len(receipts) == 4
    assert sorted(recorder.finished, key=repr) == sorted(
        ((a, r) for a in alerts for r in receipts if r.fingerprint == a.fingerprint), key=repr
    )
    outcomes = {(a.title, r.channel): r.outcome for a, r in recorder.finished}
    assert outcomes[("Disk almost full", "refusing")] is Outcome.FAILED
    assert outcomes[("Replica lagging", "audit")] is Outcome.DELIVERED


def test_delivery_finished_is_called_for_a_single_deliver_too(tmp_path: Path):
    recorder = Recorder()
    host = PluginHost.from_plugins([recorder])
    with dispatcher(host, {"audit": {"kind": "jsonl", "path": str(tmp_path / "a.jsonl")}}) as d:
        receipt = d.deliver("audit", Alert("Disk almost full"))
    assert [(a.title, r) for a, r in recorder.finished] == [("Disk almost full", receipt)]


def test_a_raising_observer_neither_fails_delivery_nor_silences_other_observers(receiver, caplog):
    recorder = Recorder()
    host = PluginHost.from_plugins([Broken(), recorder])
    url = f"{receiver.root}hooks/alerts"
    with dispatcher(host, {"hooks": {"kind": "webhook", "url": url}}) as d:
        [receipt] = d.dispatch(Alert("Disk almost full"))

    assert receipt.outcome is Outcome.DELIVERED
    assert len(recorder.events) == 1
    assert [r for _, r in recorder.finished] == [receipt]
    assert "observer Broken failed" in caplog.text
