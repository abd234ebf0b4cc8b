"""Property-based tests: bad input gives clear errors and never loses or corrupts the queue."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from outbox_support import Provider, Sent

from notifier.clock import FakeClock
from notifier.errors import ConfigError
from notifier.kinds import RateLimit
from notifier.models import Alert
from notifier.outbox import InlineRunner, NewDelivery, OutboxDelivery, OutboxSettings, OutboxStore
from notifier.outbox.settings import OPTIONS

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
alert_keys = st.sampled_from(
    ["title", "body", "severity", "labels", "annotations", "status", "fingerprint",
     "starts_at", "ends_at", "links", "source", "colour"]
)  # fmt: skip
alert_dicts = st.dictionaries(alert_keys, json_values, max_size=8) | st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=30)},
    optional={
        "severity": st.sampled_from(["critical", "error", "warning", "info", "loud"]),
        "labels": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        "status": st.sampled_from(["firing", "resolved", "dormant"]),
        "starts_at": st.sampled_from(["2024-05-01T10:00:00Z", "yesterday", 1_700_000_000]),
        "links": st.lists(st.text(max_size=10), max_size=2),
    },
)
FAST = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def shared_store():
    store = OutboxStore.open(":memory:")
    store.enqueue_many([NewDelivery(Alert(title="already queued"), "ops")], now=1.0)
    yield store
    store.close()


@FAST
@given(data=alert_dicts, channel=json_values)
def test_malformed_alerts_are_refused_clearly_and_valid_ones_round_trip(
    shared_store, data, channel
):
    before = shared_store.counts()
    try:
        item = NewDelivery(Alert.from_dict(data), channel)
    except (ValueError, TypeError) as exc:
        assert str(exc)  # a message a person can act on
        assert shared_store.counts() == before
        return
    [queued] = shared_store.enqueue_many([item], now=2.0)
    stored = shared_store.get([queued.id])[queued.id]
    # An earlier example with the same idempotency key coalesces into its row.
    assert stored.alert() == item.alert or (queued.coalesced and stored.key == queued.key)
    assert stored.channel == item.channel
    assert shared_store.db.check() == "ok"


config_values = json_values | st.floats(allow_nan=True, allow_infinity=True)
option_names = st.sampled_from([o.name for o in OPTIONS]) | st.text(max_size=10)


@FAST
@given(table=st.dictionaries(option_names, config_values, max_size=6))
def test_any_outbox_table_gives_settings_or_a_config_error_naming_each_bad_key(table):
    try:
        result = OutboxSettings.from_table(table, file="notifier.toml")
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "notifier.toml"
            assert issue.path.startswith("outbox.")
            assert issue.path.removeprefix("outbox.") in table
        return
    assert result.max_attempts >= 1 and result.batch_size >= 1 and result.lease >= 1
    assert 0 < result.backoff_initial <= result.backoff_max
    assert result.backoff.maximum >= result.backoff.initial


@pytest.mark.parametrize("table", [None, {}, {"max_attempts": 3, "path": ":memory:"}])
def test_good_tables_give_settings(table):
    assert isinstance(OutboxSettings.from_table(table), OutboxSettings)


def test_a_non_table_is_refused():
    with pytest.raises(ConfigError, match="expected a table"):
        OutboxSettings.from_table(["path"])  # type: ignore[arg-type]


LIMIT = RateLimit(3, 10)


class OutboxMachine(RuleBasedStateMachine):
    """Random writes, failures, crashes and time: nothing is lost, each alert's order and
    the rate limits hold.

    A few alerts (fingerprints) fire and resolve in turn; each written delivery is
    titled by its sequence number, so the order a channel first receives them in shows
    whether a resolution ever overtook its firing.
    """

    @initialize()
    def start(self):
        self.clock = FakeClock()
        self.provider = Provider(self.clock)
        self.engine = OutboxDelivery(
            OutboxStore.open(":memory:"),
            self.provider,
            settings=OutboxSettings(
                path=":memory:",
                dedup_window=0,
                max_attempts=4,
                backoff_initial=1,
                backoff_max=8,
                breaker_threshold=2,
                breaker_cooldown=5,
                lease=30,
            ),
            rate_limits={"robot": LIMIT},
            clock=self.clock,
            runner=InlineRunner(),
            rng=random.Random(0),
        )
        self.ids: dict[str, list[int]] = {"robot": [], "hook": []}
        self.count = 0
        self.fingerprint_of: dict[int, str] = {}  # sequence number -> fingerprint
        self.status_of: dict[str, str] = {}  # fingerprint -> its last status written

    def teardown(self):
        self.engine.close()

    @rule(
        fingerprints=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6),
        channels=st.sampled_from([("robot",), ("hook",), ("robot", "hook")]),
    )
    def submit(self, fingerprints, channels):
        alerts = []
        for fp in fingerprints:
            status = "resolved" if self.status_of.get(fp) == "firing" else "firing"
            self.status_of[fp] = status
            self.fingerprint_of[self.count] = fp
            alerts.append(Alert(title=f"alert {self.count}", fingerprint=fp, status=status))
            self.count += 1
        for r in self.engine.submit([NewDelivery(a, c) for a in alerts for c in channels]):
            self.ids[r.channel].append(r.details["delivery_id"])

    @rule(
        channel=st.sampled_from(["robot", "hook"]),
        times=st.integers(1, 3),
        how=st.sampled_from([{}, {"retryable": False}, {"retry_after": 3}, {"rate_limited": True}]),
    )
    def provider_fails(self, channel, times, how):
        self.provider.fail(channel, times, **how)

    @rule(seconds=st.sampled_from([0.5, 1, 5, 31, 600]))
    def time_passes(self, seconds):
        self.clock.advance(seconds)

    @rule()
    def worker_drains(self):
        self.engine.drain()

    @rule(sends=st.integers(0, 2))
    def a_worker_dies_mid_lane(self, sends):
        claims = self.engine.store.claim_due(self.clock.time(), 5, "elsewhere:1:x", 30)
        for claim in claims:
            for d in claim.deliveries[:sends]:  # reached the provider, never recorded
                self.provider.sent.append(Sent(d.channel, d.alert().title, None, self.clock.time()))

    @invariant()
    def nothing_is_lost(self):
        counts = self.engine.store.counts()
        for channel, ids in self.ids.items():
            assert sum(counts.get(channel, {}).values()) == len(set(ids))

    @invariant()
    def each_alert_first_reaches_a_channel_in_the_order_written(self):
        # A resolution never overtakes its firing; different alerts may pass each other.
        for channel in self.ids:
            firsts = list(dict.fromkeys(self.provider.titles(channel)))
            by_alert: dict[str, list[int]] = {}
            for title in firsts:
                number = int(title.split()[-1])
                by_alert.setdefault(self.fingerprint_of[number], []).append(number)
            for numbers in by_alert.values():
                assert numbers == sorted(numbers)

    @invariant()
    def the_rate_limit_is_never_exceeded(self):
        times = sorted(s.at for s in self.provider.attempts if s.channel == "robot")
        for i in range(len(times) - LIMIT.count):
            assert times[i + LIMIT.count] - times[i] >= LIMIT.per


OutboxMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_random_operations_never_lose_overpace_or_let_a_resolution_overtake_its_firing = (
    OutboxMachine.TestCase
)
