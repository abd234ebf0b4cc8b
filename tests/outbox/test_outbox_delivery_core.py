"""The delivery core under trouble: one alert that always fails, a provider that comes
back, two configurations sharing one file, an alert storm against a rate-limited robot.

Each runs with the outbox's default settings, against real local servers.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from outbox_support import Provider, Receiver

from notifier import Alert, Dispatcher
from notifier.clock import FakeClock
from notifier.models import Outcome, Receipt
from notifier.outbox import InlineRunner, NewDelivery, OutboxDelivery, OutboxSettings, OutboxStore
from notifier.plugins import PluginHost
from notifier.testing.server import Response


def _config(tmp_path: Path, name: str, channels: dict[str, str], outbox: str = "") -> Path:
    text = "".join(
        f'[channels.{channel}]\nkind = "webhook"\nurl = "{url}"\nmax_attempts = 1\n\n'
        for channel, url in channels.items()
    )
    path = tmp_path / name
    path.write_text(text + f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n{outbox}\n')
    return path


@pytest.mark.slow
def test_one_alert_the_provider_always_refuses_holds_back_only_itself(tmp_path):
    with Receiver() as sink:
        sink.server.route(
            "POST",
            sink.path,
            lambda request: (
                Response(500, b"cannot render this one")
                if request.json()["title"] == "poison"
                else sink.titles.append(request.json()["title"]) or {"id": "m"}
            ),
        )
        config = _config(tmp_path, "notifier.toml", {"ops": sink.url})
        with Dispatcher.from_config(config, host=PluginHost.load()) as dispatcher:
            [poisoned] = dispatcher.dispatch(Alert(title="poison"))
            assert poisoned.outcome is Outcome.QUEUED
            took = []
            for i in range(50):
                written = time.monotonic()
                [receipt] = dispatcher.dispatch(Alert(title=f"alert {i}"))
                took.append(time.monotonic() - written)
                assert receipt.outcome is Outcome.DELIVERED, receipt
            assert sorted(sink.titles) == sorted(f"alert {i}" for i in range(50))
            assert max(took) < 2.0
            [poison] = [
                d
                for d in dispatcher.outbox.store.get(range(1, 60)).values()
                if d.state != "delivered"
            ]
            # On its own schedule: one attempt so far, the next after its backoff.
            assert poison.state == "pending" and poison.attempts == 1
            assert poison.next_attempt_at > time.time() - 1


@pytest.mark.slow
def test_a_send_the_provider_never_answers_holds_back_only_its_own_alert(tmp_path):
    answer = threading.Event()  # the hung request is answered only when the test ends
    hanging = threading.Event()
    arrived: dict[str, float] = {}
    with Receiver() as sink:

        def receive(request):
            title = request.json()["title"]
            if title == "hung":
                hanging.set()
                answer.wait(60)
                return Response(503, b"far too late")
            arrived[title] = time.monotonic()
            return {"id": "m"}

        sink.server.route("POST", sink.path, receive)
        config = tmp_path / "notifier.toml"
        # Only the time budget is short, so that the test does not wait 30 s for it.
        config.write_text(
            f'[channels.ops]\nkind = "webhook"\nurl = "{sink.url}"\nmax_attempts = 1\n'
            f'delivery_timeout = 3\n\n[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
        )
        try:
            with Dispatcher.from_config(config, host=PluginHost.load()) as dispatcher:
                hung: list[Receipt] = []
                sender = threading.Thread(
                    target=lambda: hung.extend(dispatcher.dispatch(Alert(title="hung")))
                )
                sender.start()
                assert hanging.wait(10), "the hung alert's request never reached the sink"
                written: dict[str, float] = {}
                for i in range(50):
                    title = f"alert {i}"
                    written[title] = time.monotonic()
                    [receipt] = dispatcher.dispatch(Alert(title=title))
                    assert receipt.outcome is Outcome.DELIVERED, receipt
                assert sorted(arrived) == sorted(written)
                took = max(arrived[t] - written[t] for t in written)
                assert took < 2.0, f"an alert behind the hung one took {took:.1f}s"
                sender.join(10)
                [timed_out] = hung
                assert timed_out.outcome is Outcome.QUEUED
                assert "timed out" in (timed_out.error or "")
                [stuck] = [
                    d
                    for d in dispatcher.outbox.store.get(range(1, 60)).values()
                    if d.state != "delivered"
                ]
                # Failed by its own deadline, and on its own schedule: one attempt so
                # far, the next after its backoff.
                assert stuck.state == "pending" and stuck.attempts == 1
                assert stuck.next_attempt_at > time.time() - 1
        finally:
            answer.set()


def test_after_an_outage_the_first_delivery_goes_within_10s_of_the_provider_coming_back():
    clock = FakeClock()
    provider = Provider(clock)
    provider.down.add("ops")
    engine = OutboxDelivery(
        OutboxStore.open(":memory:"),
        provider,
        settings=OutboxSettings(path=":memory:"),  # the defaults
        clock=clock,
        runner=InlineRunner(),
    )
    start = clock.time()
    engine.submit([NewDelivery(Alert(title=f"alert {i}"), "ops") for i in range(5)])
    back_at = start + 60
    while not provider.sent and clock.time() < start + 900:
        if clock.time() >= back_at:
            provider.down.discard("ops")
        engine.process()
        clock.advance(engine._idle_wait())  # a worker sleeping until the next is due
    assert provider.sent
    assert provider.sent[0].at - back_at <= 10
    engine.close()


@pytest.mark.slow
def test_two_configs_on_one_file_never_send_or_dead_letter_each_others_deliveries(tmp_path):
    with Receiver() as a_of_a, Receiver() as b_of_a, Receiver() as b, Receiver() as c:
        # Config A has channels a and b; config B has c, and an "a" with another URL.
        quick = "backoff_initial = 0.001\nbackoff_max = 0.001"
        first = _config(tmp_path, "a.toml", {"a": a_of_a.url, "b": b.url}, quick)
        second = _config(tmp_path, "b.toml", {"c": c.url, "a": b_of_a.url}, quick)
        c.down = b_of_a.down = True
        with Dispatcher.from_config(second, host=PluginHost.load()) as config_b:
            receipts = config_b.dispatch(Alert(title="from B"))
            assert {r.outcome for r in receipts} == {Outcome.QUEUED}
        with Dispatcher.from_config(first, host=PluginHost.load()) as config_a:
            config_a.dispatch(Alert(title="from A"))
            config_a.outbox.drain()
            store = config_a.outbox.store
            assert store.dead_letters() == []
            waiting = [d for d in store.get(range(1, 10)).values() if d.state == "pending"]
            assert {(d.channel, Path(d.config).name) for d in waiting} == {
                ("c", "b.toml"),
                ("a", "b.toml"),
            }
        assert a_of_a.titles == ["from A"]  # B's "a" delivery never went to A's URL
        shown = subprocess.run(
            [sys.executable, "-m", "notifier", "queue", "--config", str(first)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "waiting for another configuration" in shown.stdout
        lines = shown.stdout.split("waiting for another configuration")[1].splitlines()
        assert sum(1 for line in lines if str(second) in line) == 2  # c, and B's "a"
        c.down = b_of_a.down = False
        with Dispatcher.from_config(second, host=PluginHost.load()) as config_b:
            config_b.outbox.drain()
        assert c.titles == ["from B"] and b_of_a.titles == ["from B"]


@pytest.mark.slow
def test_an_alert_storm_on_a_robot_allowed_20_a_minute_is_told_within_a_minute(tmp_path):
    from notifier_wework.testing import FREQ_LIMIT, FakeWeCom

    with FakeWeCom() as wecom:
        config = tmp_path / "notifier.toml"
        config.write_text(
            f'[channels.robot]\nkind = "wework-robot"\napi_root = "{wecom.api_root}"\n'
            f'key = "fake-robot-key-0001"\n\n[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
        )
        storm = [
            Alert(title=f"disk full on db{i}", severity=("critical", "warning")[i % 2])
            for i in range(300)
        ]
        started = time.monotonic()
        with Dispatcher.from_config(config, host=PluginHost.load()) as dispatcher:
            receipts = []
            for batch in range(5):  # an alert manager's groups, one after another
                receipts += dispatcher.dispatch_many(storm[60 * batch : 60 * (batch + 1)])
            took = time.monotonic() - started
            store = dispatcher.outbox.store
            assert store.counts() == {"robot": {"delivered": 300}}  # every alert told
            stored = store.get(range(1, 301)).values()
        assert took < 60
        assert all(r.outcome is Outcome.DELIVERED for r in receipts)
        messages = wecom.robot_messages()
        assert 1 <= len(messages) <= 20
        assert [c.errcode for c in wecom.calls if c.errcode == FREQ_LIMIT] == []  # never refused
        folded = [d for d in stored if d.delivered_by]
        assert folded and all(d.delivered_by.startswith("digest ") for d in folded)
        digests = [m.content or "" for m in messages if "alerts on robot" in (m.content or "")]
        assert digests and all(len(d.encode()) <= 4096 for d in digests)  # the robot's limit
        assert any("more" in d for d in digests)


def test_a_channels_workers_send_that_many_at_once_and_never_more_within_its_rate_limit(
    tmp_path,
):
    workers = 3
    lock = threading.Lock()
    full = threading.Event()  # `workers` requests are in the sink at once
    go = threading.Event()  # the test lets the held requests answer
    seen = {"now": 0, "peak": 0, "total": 0}
    with Receiver() as sink:

        def receive(request):
            with lock:
                seen["now"] += 1
                seen["total"] += 1
                seen["peak"] = max(seen["peak"], seen["now"])
                if seen["now"] == workers:
                    full.set()
            try:
                go.wait(30)  # a safety net only: the test sets it
                return {"id": "m"}
            finally:
                with lock:
                    seen["now"] -= 1

        sink.server.route("POST", sink.path, receive)
        config = tmp_path / "notifier.toml"
        config.write_text(
            f"[dispatcher]\nworkers = {workers}\n\n"
            f'[channels.ops]\nkind = "webhook"\nurl = "{sink.url}"\nmax_attempts = 1\n'
            "rate_limit = { count = 6, per = 30 }\n\n"
            f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n'
        )
        try:
            with Dispatcher.from_config(config, host=PluginHost.load()) as dispatcher:
                outbox = dispatcher.outbox
                outbox.enqueue(NewDelivery(Alert(title=f"alert {i}"), "ops") for i in range(9))
                done = []
                worker = threading.Thread(target=lambda: done.append(outbox.process()))
                worker.start()
                assert full.wait(30), f"the sink never saw {workers} sends at once"
                go.set()
                worker.join(30)
                [round_] = done
                # Six slots in the window: six sent, at most `workers` at a time; the
                # other three wait in the outbox for the window to move on.
                assert round_.claimed == 6 and seen["total"] == 6
                assert seen["peak"] == workers
                assert outbox.store.counts() == {"ops": {"delivered": 6, "pending": 3}}
        finally:
            go.set()
