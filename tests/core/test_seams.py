"""The seams schedulers build on: a channel send as an :class:`Attempt` value, the
:class:`Deliverer` over the configured channels, and one :class:`Pacer` per channel
whose backend (in memory, or the outbox's shared send log) paces each send once."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_dispatch import ProbePlugin, _dispatcher

import notifier
from notifier import Alert, Attempt, Deliverer, Pacer
from notifier.clock import FakeClock
from notifier.errors import RateLimited
from notifier.identity import channel_identity
from notifier.kinds import RateLimit
from notifier.models import DeliveryContext, Outcome
from notifier.outbox import OutboxSettings, OutboxStore
from notifier.outbox.channels import SendLogPacer
from notifier.plugins import PluginHost
from notifier.ratelimit import SlidingWindow


@pytest.fixture
def plugin() -> ProbePlugin:
    return ProbePlugin()


@pytest.fixture
def host(plugin: ProbePlugin) -> PluginHost:
    return PluginHost.from_plugins([plugin])


class CountingPacer:
    """A pacer that never waits and counts the slots taken."""

    def __init__(self) -> None:
        self.limit = RateLimit(1000, 1)
        self.taken = 0

    def acquire(self, max_wait: float | None = None) -> float:
        self.taken += 1
        return 0.0

    def delay(self) -> float:
        return 0.0

    def block_for(self, seconds: float) -> None:
        pass


CHANNELS = {
    "dispatcher": {"workers": 3},
    "channels": {
        "good": {"kind": "ok"},
        "bad": {"kind": "boom", "token": "tok-1234-secret"},
        "r": {"kind": "limited", "delivery_timeout": 7},
    },
}


def test_the_seams_are_exported_from_notifier() -> None:
    for name in ("Attempt", "ChannelInfo", "Deliverer", "Pacer"):
        assert name in notifier.__all__
        assert getattr(notifier, name) is not None


def test_an_attempt_is_a_typed_value_and_the_receipt_is_the_dispatchers(host) -> None:
    with _dispatcher(host, CHANNELS) as dispatcher:
        assert isinstance(dispatcher.deliverer, Deliverer)
        failed = dispatcher.deliverer.attempt("bad", Alert(title="a"), DeliveryContext())
        delivered = dispatcher.deliverer.attempt("good", Alert(title="a"), DeliveryContext())
        receipts = {r.channel: r for r in dispatcher.dispatch(Alert(title="a"))}
    assert isinstance(failed, Attempt) and not failed.ok
    assert (failed.code, failed.retryable, failed.attempts) == (40014, False, 2)
    assert "tok-1234-secret" not in (failed.error or "")
    assert delivered.ok and delivered.message_id == "good-1"
    # The receipt is built from the attempt at the edge, with the keys users know.
    direct = failed.receipt(retried=False)
    assert direct.outcome is Outcome.FAILED and receipts["bad"].outcome is Outcome.FAILED
    assert direct.details == receipts["bad"].details == {"code": 40014, "retryable": False}
    assert direct.error == receipts["bad"].error
    assert delivered.receipt().details == receipts["good"].details == {}


def test_a_retryable_failure_says_no_one_retries_it_only_where_no_one_does() -> None:
    attempt = Attempt("c", False, error="busy", retryable=True, rate_limited=True, retry_after=3)
    assert attempt.receipt().error == "busy"
    assert "not retried" in (attempt.receipt(retried=False).error or "")
    assert attempt.receipt().details == {"retryable": True, "rate_limited": True, "retry_after": 3}
    assert Attempt.from_receipt(attempt.receipt()) == attempt


def test_the_deliverer_tells_each_channels_facts(host) -> None:
    with _dispatcher(host, CHANNELS) as dispatcher:
        info = dispatcher.deliverer.channels
        spec = dispatcher.config.channels["r"]
    assert set(info) == {"good", "bad", "r"}
    assert info["r"].identity == channel_identity(spec)
    assert info["r"].rate_limit == RateLimit(3, 10)
    assert (info["r"].workers, info["r"].timeout) == (3, 7)
    assert info["good"].rate_limit is None and info["good"].digest_threshold is None


def test_an_unknown_channel_is_a_permanent_failure_not_an_exception(host) -> None:
    with _dispatcher(host, CHANNELS) as dispatcher:
        attempt = dispatcher.deliverer.attempt("gone", Alert(title="a"), DeliveryContext())
    assert not attempt.ok and not attempt.retryable
    assert "not in the configuration" in (attempt.error or "")


def test_an_injected_pacer_paces_each_direct_send_once(host, plugin) -> None:
    counting = CountingPacer()
    with _dispatcher(host, CHANNELS, pacers={"r": counting}) as dispatcher:
        receipts = dispatcher.dispatch_many([Alert(title=f"a{i}") for i in range(5)])
        channel_receipts = [r for r in receipts if r.channel == "r"]
    assert [r.outcome for r in channel_receipts] == [Outcome.DELIVERED] * 5
    assert counting.taken == len(plugin.channels["r"].sent) == 5


def test_with_the_outbox_each_send_takes_one_slot_of_the_shared_send_log_only(
    host, plugin, tmp_path: Path
) -> None:
    counting = CountingPacer()
    clock = FakeClock()
    db = tmp_path / "outbox.db"
    data = {**CHANNELS, "channels": {"r": CHANNELS["channels"]["r"]}}  # type: ignore[index]
    settings = OutboxSettings(path=str(db), dedup_window=0)
    with _dispatcher(host, data, clock=clock, outbox=settings, pacers={"r": counting}) as d:
        assert isinstance(d.deliverer.pacers["r"], SendLogPacer)
        first = d.dispatch_many([Alert(title=f"a{i}") for i in range(3)])
        # The window (3 per 10 s) is full: the next waits in the outbox, nothing sent.
        [fourth] = d.dispatch(Alert(title="a3"))
    assert [r.outcome for r in first] == [Outcome.DELIVERED] * 3
    assert fourth.outcome is Outcome.QUEUED
    assert len(plugin.channels["r"].sent) == 3
    assert counting.taken == 0  # the send log is the backend in force, and the only one
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sends WHERE channel = 'r'").fetchone() == (3,)


def _sliding(clock: FakeClock, limit: RateLimit, _: Path) -> Pacer:
    return SlidingWindow(limit, clock)


def _send_log(clock: FakeClock, limit: RateLimit, tmp_path: Path) -> Pacer:
    store = OutboxStore.open(str(tmp_path / "outbox.db"))
    return SendLogPacer(store, "ops", limit, clock)


@pytest.mark.parametrize("make", [_sliding, _send_log], ids=["memory", "send-log"])
def test_each_pacing_backend_keeps_the_same_promises(make: Any, tmp_path: Path) -> None:
    clock = FakeClock()
    pacer = make(clock, RateLimit(2, 10), tmp_path)
    assert isinstance(pacer, Pacer)
    assert pacer.acquire() == 0 and pacer.acquire() == 0
    assert pacer.delay() > 9
    with pytest.raises(RateLimited) as refused:
        pacer.acquire(max_wait=1)
    assert refused.value.retryable and refused.value.retry_after > 9
    started = clock.time()
    assert pacer.acquire() > 9  # waited (on the injected clock) for the oldest to leave
    assert clock.time() - started > 9
    pacer.block_for(30)
    assert pacer.delay() >= 29
