"""The dispatcher: concurrent, isolated deliveries with one receipt per channel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from notifier import Alert, Dispatcher, hookimpl
from notifier.clock import FakeClock
from notifier.config import parse_config
from notifier.errors import ProviderError, RateLimited
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, RateLimit
from notifier.models import DeliveryContext, Outcome, Receipt, SendResult
from notifier.plugins import PluginHost
from notifier.redact import Secret


@attrs.define
class Probe:
    """A test channel: its behaviour is chosen by its kind."""

    name: str
    kind: str
    clock: Any
    token: Secret | None = None
    sent: list[tuple[float, str, DeliveryContext]] = attrs.field(factory=list)
    release: threading.Event = attrs.field(factory=threading.Event)
    script: list[BaseException] = attrs.field(factory=list)

    def close(self) -> None:
        self.release.set()


class ProbePlugin:
    """Kinds ``ok``, ``boom`` (raises), ``hang`` (blocks until closed) and ``limited``."""

    def __init__(self) -> None:
        self.channels: dict[str, Probe] = {}

    def _build(self, spec: ChannelSpec, context: BuildContext) -> Probe:
        probe = Probe(spec.name, spec.kind, context.clock, spec.options.get("token"))
        self.channels[spec.name] = probe
        return probe

    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        token = Option("token", secret=True)
        return [
            ChannelKind("ok", self._build, (token,)),
            ChannelKind("boom", self._build, (token,)),
            ChannelKind("hang", self._build),
            ChannelKind("limited", self._build, rate_limit=RateLimit(3, 10)),
        ]

    @hookimpl
    def notifier_send(self, channel: Any, alert: Alert, delivery: DeliveryContext) -> Any:
        if not isinstance(channel, Probe):
            return None
        if channel.kind == "boom":
            secret = channel.token.reveal() if channel.token else ""
            raise ProviderError(f"provider refused token {secret}", code=40014, attempts=2)
        if channel.kind == "hang":
            channel.release.wait(30)
        if channel.script:
            raise channel.script.pop(0)
        channel.sent.append((channel.clock.monotonic(), alert.title, delivery))
        return SendResult(message_id=f"{channel.name}-{len(channel.sent)}")


@pytest.fixture
def plugin() -> ProbePlugin:
    return ProbePlugin()


@pytest.fixture
def observed() -> list[Receipt]:
    return []


@pytest.fixture
def host(plugin: ProbePlugin, observed: list[Receipt]) -> PluginHost:
    class Observer:
        @hookimpl
        def notifier_delivery_finished(self, alert: Alert, receipt: Receipt) -> None:
            observed.append(receipt)

    return PluginHost.from_plugins([plugin, Observer()])


def _dispatcher(host: PluginHost, data: dict[str, Any], **kwargs: Any) -> Dispatcher:
    return Dispatcher(parse_config(data, host, env={}), host=host, **kwargs)


@pytest.fixture
def mixed(host: PluginHost) -> Iterator[Dispatcher]:
    data = {
        "dispatcher": {"workers": 4},
        "channels": {
            "good": {"kind": "ok"},
            "bad": {"kind": "boom", "token": "tok-1234-secret"},
            "stuck": {"kind": "hang", "delivery_timeout": 0.2},
            "good2": {"kind": "ok"},
        },
    }
    with _dispatcher(host, data) as dispatcher:
        yield dispatcher


def test_a_raising_and_a_hanging_channel_do_not_stop_the_others(
    mixed: Dispatcher, plugin: ProbePlugin, observed: list[Receipt]
) -> None:
    receipts = {r.channel: r for r in mixed.dispatch(Alert(title="disk full"))}
    assert receipts["good"].outcome is Outcome.DELIVERED
    assert receipts["good2"].outcome is Outcome.DELIVERED
    assert receipts["good"].message_id == "good-1"
    assert receipts["bad"].outcome is Outcome.FAILED
    assert receipts["bad"].attempts == 2
    assert receipts["bad"].details == {"code": 40014, "retryable": False}
    stuck = receipts["stuck"]
    assert stuck.outcome is Outcome.FAILED
    assert "did not finish within 0.2s" in (stuck.error or "")
    assert stuck.details["retryable"] is True
    assert len(plugin.channels["good"].sent) == 1 and len(plugin.channels["good2"].sent) == 1
    assert sorted(r.channel for r in observed) == ["bad", "good", "good2", "stuck"]


def test_errors_on_receipts_never_carry_secrets(mixed: Dispatcher) -> None:
    (bad,) = [r for r in mixed.dispatch(Alert(title="x")) if r.channel == "bad"]
    assert bad.error == "provider refused token ***"
    assert "tok-1234-secret" not in repr(bad) and "tok-1234-secret" not in str(bad.to_dict())


def test_receipts_come_back_in_alert_then_route_order(mixed: Dispatcher) -> None:
    alerts = [Alert(title=f"a{i}") for i in range(5)]
    receipts = mixed.dispatch_many(alerts)
    assert [r.fingerprint for r in receipts] == [a.fingerprint for a in alerts for _ in range(4)]
    assert [r.channel for r in receipts[:4]] == ["good", "bad", "stuck", "good2"]
    stuck = [r.error for r in receipts if r.channel == "stuck"]
    # Four workers hang in the first four; the fifth fails at once instead of queueing.
    assert sum("did not finish within" in (e or "") for e in stuck) == 4
    assert sum("all 4 of its workers are stuck" in (e or "") for e in stuck) == 1
    assert all(r.ok for r in receipts if r.channel in ("good", "good2"))


def test_an_unexpected_exception_is_a_retryable_failure(host: PluginHost, plugin) -> None:
    with _dispatcher(host, {"channels": {"c": {"kind": "ok"}}}) as dispatcher:
        plugin.channels["c"].script.append(KeyError("surprise"))
        (receipt,) = dispatcher.dispatch(Alert(title="x"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.error.startswith("KeyError: 'surprise'")
    assert receipt.details["retryable"] is True


def test_a_retryable_failure_without_an_outbox_says_nothing_retries_it(
    host: PluginHost, plugin
) -> None:
    with _dispatcher(host, {"channels": {"c": {"kind": "ok"}}}) as dispatcher:
        plugin.channels["c"].script.append(ProviderError("errcode -1: busy", retryable=True))
        plugin.channels["c"].script.append(ProviderError("errcode 40003: bad user"))
        (busy,) = dispatcher.dispatch(Alert(title="x"))
        (refused,) = dispatcher.dispatch(Alert(title="y"))
    assert busy.error == (
        "errcode -1: busy; not retried: configure [outbox] for retries (docs/outbox.md)"
    )
    assert "retried later" not in busy.error
    assert refused.error == "errcode 40003: bad user"  # permanent: retries would not help


def test_routes_choose_channels_and_pass_mentions(host: PluginHost, plugin) -> None:
    data = {
        "channels": {"pager": {"kind": "ok"}, "chat": {"kind": "ok"}, "audit": {"kind": "ok"}},
        "routes": [
            {
                "severity": ["critical"],
                "channels": ["pager"],
                "mentions": ["@all"],
                "continue": True,
            },
            {"labels": {"team": "db"}, "channels": ["chat", "pager"], "mentions": ["dba"]},
            {"channels": ["audit"]},
        ],
    }
    with _dispatcher(host, data) as dispatcher:
        critical_db = dispatcher.dispatch(
            Alert(title="a", severity="critical", labels={"team": "db"})
        )
        assert [r.channel for r in critical_db] == ["pager", "chat"]
        assert plugin.channels["pager"].sent[0][2].mentions == ("@all", "dba")
        assert [r.channel for r in dispatcher.dispatch(Alert(title="b"))] == ["audit"]
        assert [r.channel for r in dispatcher.dispatch(Alert(title="c", severity="critical"))] == [
            "pager",
            "audit",
        ]


def test_idempotency_keys_are_stable_per_alert_and_channel(host: PluginHost, plugin) -> None:
    data = {"channels": {"a": {"kind": "ok"}, "b": {"kind": "ok"}}}
    with _dispatcher(host, data) as dispatcher:
        alert = Alert(title="x")
        dispatcher.dispatch(alert)
        dispatcher.dispatch(alert)
        dispatcher.dispatch(attrs.evolve(alert, status="resolved"))
    keys_a = [d.idempotency_key for _, _, d in plugin.channels["a"].sent]
    keys_b = [d.idempotency_key for _, _, d in plugin.channels["b"].sent]
    assert keys_a[0] == keys_a[1] != keys_a[2]
    assert not set(keys_a) & set(keys_b)


def test_a_rate_limited_channel_is_paced_within_any_window(host: PluginHost, plugin) -> None:
    clock = FakeClock()
    data = {"dispatcher": {"workers": 4}, "channels": {"r": {"kind": "limited"}}}
    with _dispatcher(host, data, clock=clock) as dispatcher:
        receipts = dispatcher.dispatch_many([Alert(title=f"a{i}") for i in range(10)])
    assert all(r.ok for r in receipts)
    times = sorted(t for t, _, _ in plugin.channels["r"].sent)
    assert len(times) == 10
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + 10]
        assert len(in_window) <= 3, f"more than 3 sends in the 10 s window from {start}"
    assert times[-1] - times[0] >= 30  # 10 sends at 3 per 10 s need three full waits


def test_a_provider_rate_limit_answer_holds_the_channel_back(host: PluginHost, plugin) -> None:
    clock = FakeClock()
    data = {"channels": {"r": {"kind": "limited"}}}
    with _dispatcher(host, data, clock=clock) as dispatcher:
        plugin.channels["r"].script.append(RateLimited("slow down", retry_after=42))
        (refused,) = dispatcher.dispatch(Alert(title="a"))
        started = clock.monotonic()
        (later,) = dispatcher.dispatch(Alert(title="b"))
    assert refused.outcome is Outcome.FAILED and refused.details["retry_after"] == 42
    assert later.ok and plugin.channels["r"].sent[0][0] >= started + 42 - 0.001


def test_deliver_is_one_attempt_that_never_raises(mixed: Dispatcher, observed) -> None:
    receipt = mixed.deliver("bad", Alert(title="x"))
    assert receipt.outcome is Outcome.FAILED and observed == [receipt]
    assert mixed.deliver("good", Alert(title="x")).ok
    stuck = mixed.deliver("stuck", Alert(title="x"))  # the caller is not held hostage
    assert stuck.outcome is Outcome.FAILED and "did not finish within 0.2s" in stuck.error


def test_close_is_idempotent_and_closes_channels(host: PluginHost, plugin) -> None:
    dispatcher = _dispatcher(host, {"channels": {"s": {"kind": "hang"}}})
    dispatcher.close()
    dispatcher.close()
    assert plugin.channels["s"].release.is_set()
