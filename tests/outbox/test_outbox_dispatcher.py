"""The dispatcher with the outbox: real webhook channels on local servers, a fake clock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from outbox_support import Receiver, webhook_config

from notifier import Alert, Dispatcher
from notifier.errors import ConfigError
from notifier.models import Outcome
from notifier.outbox import OutboxSettings
from notifier.plugins import PluginHost


@pytest.fixture
def receivers():
    with Receiver() as steady, Receiver() as flaky:
        yield {"steady": steady, "flaky": flaky}


@pytest.fixture
def open_dispatcher(tmp_path: Path, clock):
    made = []

    def open_(receivers, outbox="", **extra):
        config = tmp_path / "notifier.toml"
        outbox = outbox or 'path = "outbox.db"\nbackoff_initial = 5\nbackoff_max = 60'
        config.write_text(webhook_config(receivers, outbox, **extra))
        host = PluginHost.from_plugins([])
        dispatcher = Dispatcher.from_config(config, clock=clock, host=host)
        made.append(dispatcher)
        return dispatcher

    yield open_
    for dispatcher in made:
        dispatcher.close()


def alerts(n, start=0):
    return [Alert(title=f"alert {i}") for i in range(start, start + n)]


def test_dispatch_writes_to_the_outbox_first_then_delivers(open_dispatcher, receivers, tmp_path):
    dispatcher = open_dispatcher(receivers)
    receipts = dispatcher.dispatch(Alert(title="disk full"))
    assert [(r.channel, r.outcome) for r in receipts] == [
        ("steady", Outcome.DELIVERED),
        ("flaky", Outcome.DELIVERED),
    ]
    assert dispatcher.outbox.store.path == str(tmp_path / "outbox.db")
    assert dispatcher.outbox.store.counts() == {
        "flaky": {"delivered": 1},
        "steady": {"delivered": 1},
    }
    [key] = receivers["steady"].keys
    assert key == receipts[0].details["idempotency_key"]


def test_a_channel_down_for_a_while_gets_every_alert_once_when_up(
    open_dispatcher, receivers, clock
):
    dispatcher = open_dispatcher(receivers)
    flaky = receivers["flaky"]
    flaky.down = True
    for batch in range(3):
        receipts = dispatcher.dispatch_many(alerts(10, start=10 * batch))
        by_channel = {r.channel: r.outcome for r in receipts}
        assert by_channel == {"steady": Outcome.DELIVERED, "flaky": Outcome.QUEUED}
        clock.advance(60)
        dispatcher.outbox.drain()
    assert flaky.titles == []
    assert dispatcher.outbox.store.counts()["flaky"] == {"pending": 30}
    flaky.down = False
    for _ in range(20):
        clock.advance(120)
        dispatcher.outbox.drain()
    # Different alerts, sent side by side: each once, in whatever order they finish.
    assert sorted(flaky.titles) == sorted(f"alert {i}" for i in range(30))
    assert sorted(receivers["steady"].titles) == sorted(f"alert {i}" for i in range(30))
    assert dispatcher.outbox.store.counts()["flaky"] == {"delivered": 30}


def test_a_queued_receipt_says_when_the_next_attempt_is(open_dispatcher, receivers, clock):
    dispatcher = open_dispatcher(receivers)
    receivers["flaky"].down = True
    [_, queued] = dispatcher.dispatch(Alert(title="disk full"))
    assert queued.outcome is Outcome.QUEUED
    assert clock.time() + 2.5 <= queued.next_attempt_at <= clock.time() + 5
    assert "503" in queued.error
    assert not queued.ok


def test_a_burst_beyond_the_channels_rate_limit_waits_in_the_outbox(
    open_dispatcher, receivers, clock
):
    dispatcher = open_dispatcher(
        {"steady": receivers["steady"]}, rate_limit="{ count = 3, per = 60 }", digest_threshold="0"
    )
    start = clock.time()
    receipts = dispatcher.dispatch_many(alerts(7))
    assert sorted(r.outcome for r in receipts) == [Outcome.DELIVERED] * 3 + [Outcome.QUEUED] * 4
    report = dispatcher.outbox.drain()
    assert sorted(receivers["steady"].titles) == [f"alert {i}" for i in range(7)]
    assert report.waited >= 120
    assert clock.time() - start >= 120


def test_the_same_alert_again_within_the_dedup_window_is_not_sent_twice(open_dispatcher, receivers):
    dispatcher = open_dispatcher({"steady": receivers["steady"]}, 'path = "outbox.db"')
    first = Alert(title="disk full", labels={"host": "db1"})
    again = Alert(title="disk full", labels={"host": "db1"})
    assert dispatcher.dispatch(first)[0].outcome is Outcome.DELIVERED
    assert dispatcher.dispatch(again)[0].outcome is Outcome.DEDUPLICATED
    assert receivers["steady"].titles == ["disk full"]


def test_memory_mode_and_turning_the_outbox_off(open_dispatcher, receivers, tmp_path, clock):
    dispatcher = open_dispatcher({"steady": receivers["steady"]}, 'path = ":memory:"')
    assert dispatcher.outbox.store.db.memory
    assert dispatcher.dispatch(Alert(title="a"))[0].outcome is Outcome.DELIVERED
    config = tmp_path / "notifier.toml"
    host = PluginHost.from_plugins([])
    with Dispatcher.from_config(config, host=host, outbox=False) as direct:
        assert direct.outbox is None
    custom = OutboxSettings(path=":memory:", max_attempts=2)
    with Dispatcher.from_config(config, host=host, outbox=custom) as chosen:
        assert chosen.outbox.settings.max_attempts == 2


def test_without_an_outbox_table_the_dispatcher_delivers_directly(receivers, tmp_path):
    config = tmp_path / "notifier.toml"
    config.write_text(webhook_config({"steady": receivers["steady"]}, "").split("[outbox]")[0])
    with Dispatcher.from_config(config, host=PluginHost.from_plugins([])) as dispatcher:
        assert dispatcher.outbox is None
        assert dispatcher.dispatch(Alert(title="a"))[0].outcome is Outcome.DELIVERED


def test_a_bad_outbox_table_is_a_config_error_listing_each_problem(receivers, tmp_path):
    config = tmp_path / "notifier.toml"
    bad = 'max_attempts = "many"\nbreaker_cooldown = -1\nretries = 3'
    config.write_text(webhook_config({"steady": receivers["steady"]}, bad))
    with pytest.raises(ConfigError) as info:
        Dispatcher.from_config(config, host=PluginHost.from_plugins([]))
    assert [i.path for i in info.value.issues] == [
        "outbox.max_attempts",
        "outbox.breaker_cooldown",
        "outbox.retries",
    ]
    assert all(i.file == str(config) for i in info.value.issues)


def test_a_channel_not_in_this_config_keeps_its_queue_for_a_process_that_has_it(
    open_dispatcher, receivers, tmp_path, clock
):
    dispatcher = open_dispatcher(receivers)
    receivers["flaky"].down = True
    dispatcher.dispatch(Alert(title="stuck"))
    dispatcher.close()
    smaller = open_dispatcher({"steady": receivers["steady"]})
    clock.advance(600)
    smaller.outbox.drain()
    assert smaller.outbox.store.dead_letters() == []
    assert smaller.outbox.store.counts()["flaky"] == {"pending": 1}
    smaller.close()
    receivers["flaky"].down = False
    again = open_dispatcher(receivers)
    again.outbox.drain()
    assert receivers["flaky"].titles == ["stuck"]


def test_threads_dispatching_at_once_each_alert_arrives_once_and_no_lane_stays_held(
    tmp_path, receivers
):
    # Real clock: lanes kept across a stream and records riding with the next write,
    # from four threads writing to one file, to one channel each and to both.
    config = tmp_path / "notifier.toml"
    config.write_text(webhook_config(receivers, 'path = "outbox.db"'))
    routes = '\n[[routes]]\nlabels = { to = "steady" }\nchannels = ["steady"]\n'
    routes += '\n[[routes]]\nlabels = { to = "flaky" }\nchannels = ["flaky"]\n'
    routes += '\n[[routes]]\nchannels = ["steady", "flaky"]\n'
    config.write_text(config.read_text() + routes)
    sent: dict[str, list[str]] = {"steady": [], "flaky": []}
    failures: list[str] = []
    with Dispatcher.from_config(config, host=PluginHost.from_plugins([])) as dispatcher:

        def work(n: int) -> None:
            for i in range(40):
                to = ("steady", "flaky", "both")[(n + i) % 3]
                alert = Alert(title=f"t{n} a{i}", labels={"to": to})
                for receipt in dispatcher.dispatch(alert):
                    if receipt.outcome is not Outcome.DELIVERED:
                        failures.append(f"{alert.title}: {receipt.outcome} {receipt.error}")
                for name in ("steady", "flaky") if to == "both" else (to,):
                    sent[name].append(alert.title)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = dispatcher.outbox.store.counts()
        with dispatcher.outbox.store.db.read("test") as conn:
            held = conn.execute("SELECT name FROM channels WHERE lease_owner IS NOT NULL")
            held = held.fetchall()
    assert failures == []
    for name, receiver in receivers.items():
        assert sorted(receiver.titles) == sorted(sent[name])  # each once, none lost
        assert counts[name] == {"delivered": len(sent[name])}
    assert held == []
