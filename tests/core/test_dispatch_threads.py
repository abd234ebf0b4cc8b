"""Where a delivery runs: a lone delivery of a bounded kind on the caller's thread,
everything else on the channel's lane; every send sees its deadline."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from notifier import Alert, Dispatcher, deadline, hookimpl
from notifier.config import parse_config
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec
from notifier.models import DeliveryContext, Outcome, SendResult
from notifier.plugins import PluginHost


class Recorder:
    """Kinds ``bounded`` and ``plain``: each send records its thread and time left."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, threading.Thread, float | None]] = []
        self.took: list[float] = []  # a fake monotonic clock that a send moves on
        self.overrun = 0.0

    def _build(self, spec: ChannelSpec, context: BuildContext) -> str:
        return spec.name

    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        return [
            ChannelKind("bounded", self._build, bounded=True),
            ChannelKind("plain", self._build),
        ]

    @hookimpl
    def notifier_send(self, channel: Any, alert: Alert, delivery: DeliveryContext) -> Any:
        self.seen.append((channel, threading.current_thread(), deadline.remaining()))
        if self.took:
            self.took[0] += self.overrun
        return SendResult(message_id=f"{channel}-{len(self.seen)}")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def dispatcher(recorder: Recorder):
    host = PluginHost.from_plugins([recorder])
    data = {
        "channels": {
            "fast": {"kind": "bounded", "delivery_timeout": 7},
            "fast2": {"kind": "bounded"},
            "slow": {"kind": "plain", "delivery_timeout": 4},
        },
        "routes": [{"channels": ["fast"]}],
    }
    with Dispatcher(parse_config(data, host, env={}), host=host) as d:
        yield d


def test_a_lone_delivery_of_a_bounded_kind_runs_on_the_calling_thread(dispatcher, recorder):
    (receipt,) = dispatcher.dispatch(Alert(title="disk full"))
    assert receipt.outcome is Outcome.DELIVERED and receipt.message_id == "fast-1"
    assert dispatcher.deliver("fast2", Alert(title="again")).ok
    assert [thread for _, thread, _ in recorder.seen] == [threading.current_thread()] * 2


def test_an_unbounded_kind_and_a_fan_out_run_on_the_lanes(dispatcher, recorder):
    assert dispatcher.deliver("slow", Alert(title="x")).ok
    assert dispatcher.dispatch_many([Alert(title="a"), Alert(title="b")])[0].ok
    threads = {(channel, thread.name.split("_")[0]) for channel, thread, _ in recorder.seen}
    assert threads == {("slow", "notifier-slow"), ("fast", "notifier-fast")}


def test_every_send_sees_the_deadline_of_its_channel(dispatcher, recorder):
    dispatcher.deliver("fast", Alert(title="x"))
    dispatcher.deliver("slow", Alert(title="y"))
    left = {channel: remaining for channel, _, remaining in recorder.seen}
    assert 6 < left["fast"] <= 7  # type: ignore[operator]
    assert 3 < left["slow"] <= 4  # type: ignore[operator]
    assert deadline.current() is None  # nothing leaks into the caller's context


def test_a_bounded_send_that_overruns_is_delivered_and_logged(
    dispatcher, recorder, monkeypatch, caplog
):
    import time

    recorder.took, recorder.overrun = [100.0], 8.5  # 8.5 s against a 7 s budget
    monkeypatch.setattr(time, "monotonic", lambda: recorder.took[0])
    with caplog.at_level(logging.WARNING, logger="notifier.lanes"):
        receipt = dispatcher.deliver("fast", Alert(title="x"))
    assert receipt.outcome is Outcome.DELIVERED
    [record] = [r for r in caplog.records if "past its 7s delivery_timeout" in r.message]
    assert "took 8.5s" in record.message
    assert record.name == "notifier.lanes"  # the lanes' own logger, not the dispatcher's


class Gate:
    """Kind ``gated`` (bounded): each send waits at the gate, counting who is inside."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.lock = threading.Lock()
        self.inside = self.most = 0

    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        return [ChannelKind("gated", lambda spec, context: spec.name, bounded=True)]

    @hookimpl
    def notifier_send(self, channel: Any, alert: Alert, delivery: DeliveryContext) -> Any:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            self.open.wait(10)
        finally:
            with self.lock:
                self.inside -= 1
        return SendResult()


def gated_dispatcher(gate: Gate, timeout: float) -> Dispatcher:
    host = PluginHost.from_plugins([gate])
    data = {
        "dispatcher": {"workers": 2},
        "channels": {"gated": {"kind": "gated", "delivery_timeout": timeout}},
    }
    return Dispatcher(parse_config(data, host, env={}), host=host)


def test_callers_on_their_own_threads_share_the_channels_workers_limit():
    gate = Gate()
    with gated_dispatcher(gate, timeout=10) as dispatcher:
        receipts: list[Any] = []
        callers = [
            threading.Thread(
                target=lambda: receipts.append(dispatcher.deliver("gated", Alert(title="x")))
            )
            for _ in range(6)
        ]
        for caller in callers:
            caller.start()
        while gate.inside < 2:  # two are in; the others wait for a worker's slot
            threading.Event().wait(0.01)
        gate.open.set()
        for caller in callers:
            caller.join(10)
    assert gate.most == 2
    assert [r.outcome for r in receipts] == [Outcome.DELIVERED] * 6


def test_a_caller_that_finds_every_worker_busy_for_its_timeout_gets_a_timeout_receipt():
    gate = Gate()
    with gated_dispatcher(gate, timeout=0.2) as dispatcher:
        holders = [
            threading.Thread(target=dispatcher.deliver, args=("gated", Alert(title="held")))
            for _ in range(2)
        ]
        for holder in holders:
            holder.start()
        while gate.inside < 2:
            threading.Event().wait(0.01)
        receipt = dispatcher.deliver("gated", Alert(title="late"))
        gate.open.set()
        for holder in holders:
            holder.join(10)
    assert receipt.outcome is Outcome.FAILED
    assert "all 2 of its workers stayed busy for 0.2s" in (receipt.error or "")
    assert receipt.details["retryable"] is True
