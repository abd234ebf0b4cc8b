"""The state workers share in Redis behaves as the outbox's rules say, across processes.

Every "process" here is its own Redis client and its own object, as in separate workers.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from notifier.celery.deadletters import DeadLetters
from notifier.celery.pacing import RedisWindow
from notifier.celery.state import SharedState
from notifier.celery.tokens import RedisTokenStore
from notifier.clock import FakeClock
from notifier.errors import AuthError, QueueUnavailable, RateLimited
from notifier.http.auth import TokenCache
from notifier.kinds import RateLimit
from notifier.outbox.policy import CircuitBreaker, CircuitState


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


@pytest.mark.slow
def test_a_shared_window_never_lets_more_than_n_start_in_any_window_across_processes(redis_url):
    limit = RateLimit(5, 0.5)
    windows = [RedisWindow(client(redis_url), "t:window", limit) for _ in range(4)]
    starts: list[float] = []
    lock = threading.Lock()

    def send(window: RedisWindow) -> None:
        for _ in range(5):
            window.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=send, args=(w,)) for w in windows]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    starts.sort()
    assert len(starts) == 20
    for first, sixth in zip(starts, starts[5:], strict=False):
        assert sixth - first >= 0.5, "six sends started within one window"


def test_a_shared_window_refuses_past_max_wait_without_taking_a_slot(redis_url):
    one, other = (RedisWindow(client(redis_url), "t:w", RateLimit(1, 5.0)) for _ in range(2))
    assert one.acquire(max_wait=0) == 0
    with pytest.raises(RateLimited) as refused:
        other.acquire(max_wait=0.1)
    assert 4 < refused.value.retry_after <= 5.25
    assert other.delay() == pytest.approx(one.delay(), abs=0.05)


def test_a_provider_refusal_blocks_the_channel_for_every_process(redis_url):
    one, other = (RedisWindow(client(redis_url), "t:w", RateLimit(100, 1.0)) for _ in range(2))
    one.block_for(3.0)
    assert 2.5 < other.delay() <= 3.0


def test_the_shared_breaker_follows_the_outbox_policy_step_by_step(redis_url):
    state = SharedState(client(redis_url), "t")
    policy = CircuitBreaker(threshold=3, cooldown=10.0)
    local = CircuitState()
    now = 1000.0
    events = ["fail", "fail", "ok", "fail", "fail", "fail", "admit+20", "fail", "admit+20", "ok"]
    for event in events:
        if event == "fail":
            local = policy.on_failure(local, now)
            state.tripped("ch", now, policy.threshold, policy.cooldown)
        elif event == "ok":
            local = policy.on_success(local)
            state.closed("ch")
        else:
            now += 20
            assert policy.admits(local, now) == 1  # a probe
            assert state.admit("ch", now, policy.threshold, 5.0) == 0
            assert state.admit("ch", now, policy.threshold, 5.0) > 0, "a second probe"
        shared = state.circuit("ch")
        assert shared.get("circuit", "closed") in (local.circuit.value, "half_open")
        if policy.admits(local, now) is None:  # closed: every delivery may go
            assert state.admit("ch", now, policy.threshold, 5.0) == 0


def test_an_open_circuit_says_how_long_until_its_probe(redis_url):
    state = SharedState(client(redis_url), "t")
    for _ in range(2):
        state.tripped("ch", 100.0, 2, 30.0)
    assert state.admit("ch", 110.0, 2, 5.0) == pytest.approx(20.0)
    assert state.admit("ch", 131.0, 2, 5.0) == 0  # cooled down: this caller probes


def test_only_the_first_unfinished_delivery_of_an_alert_may_run_and_only_once(redis_url):
    state = SharedState(client(redis_url), "t")
    first = state.enqueue("ch", "fp", 60)
    second = state.enqueue("ch", "fp", 60)
    other_alert = state.enqueue("ch", "fp2", 60)
    assert state.begin("ch", "fp", second, "task-2", 10).step == "wait"
    assert state.begin("ch", "fp2", other_alert, "task-3", 10).step == "go"
    assert state.begin("ch", "fp", first, "task-1", 10).step == "go"
    assert state.begin("ch", "fp", first, "task-1-copy", 10).step == "wait", "claimed"
    state.finish("ch", "fp", first, "task-1", "delivered", status="firing", now=5.0)
    assert state.begin("ch", "fp", first, "task-1-copy", 10).step == "done"
    begun = state.begin("ch", "fp", second, "task-2", 10)
    assert (begun.step, begun.sent, begun.tripped) == ("go", {"firing": 5.0}, False)
    assert state.counts()["ch"] == {"queued": 2, "retry": 0, "dead": 0}


def test_a_delivery_whose_task_never_came_stops_holding_its_alert_back_after_the_grace(
    redis_url,
):
    clock = FakeClock()
    state = SharedState(client(redis_url), "t", grace=60.0, clock=clock)
    lost = state.enqueue("ch", "fp", 600)  # its producer died before publishing the task
    later = state.enqueue("ch", "fp", 600)
    clock.advance(30)
    assert state.begin("ch", "fp", later, "task-2", 10).step == "wait"
    clock.advance(31)  # the lost one was last seen 61 s ago; the later one 31 s ago
    assert state.begin("ch", "fp", later, "task-2", 10).step == "go"
    assert state.counts()["ch"]["queued"] == 1
    state.finish("ch", "fp", later, "task-2", "delivered", status="resolved", now=1.0)
    # Its task turns up after all: delivered late rather than never.
    assert state.begin("ch", "fp", lost, "task-1", 10).step == "go"
    state.finish("ch", "fp", lost, "task-1", "delivered", status="firing", now=2.0)
    assert state.begin("ch", "fp", lost, "task-1-copy", 10).step == "done"
    assert state.counts()["ch"] == {"queued": 0, "retry": 0, "dead": 0}


def test_a_delivery_waiting_out_its_backoff_keeps_holding_its_alert_back(redis_url):
    clock = FakeClock()
    state = SharedState(client(redis_url), "t", grace=60.0, clock=clock)
    first = state.enqueue("ch", "fp", 6000)
    second = state.enqueue("ch", "fp", 6000)
    assert state.begin("ch", "fp", first, "task-1", 10).step == "go"
    state.to_retry("ch", "fp", "task-1", first, 600.0, {"attempt": 2}, retrying=False)
    clock.advance(500)
    assert state.begin("ch", "fp", second, "task-2", 10).step == "wait"


def test_a_kept_job_whose_task_was_lost_is_revived_once_and_waited_for(redis_url):
    clock = FakeClock()
    state = SharedState(client(redis_url), "t", grace=60.0, clock=clock)
    lost = state.enqueue("ch", "fp", 600)
    state.keep("ch", "fp", lost, {"seq": lost, "title": "lost"})
    later = state.enqueue("ch", "fp", 600)
    state.keep("ch", "fp", later, {"seq": later})
    assert state.revive() == []
    clock.advance(61)
    assert state.begin("ch", "fp", later, "task-2", 10).step == "wait", "its job is kept"
    assert state.revive() == [{"seq": lost, "title": "lost"}]
    assert state.revive() == [], "one sweeper sends it"
    assert state.begin("ch", "fp", lost, "revived", 10).step == "go"
    state.finish("ch", "fp", lost, "revived", "delivered", status="firing", now=1.0)
    clock.advance(61)
    assert [job["seq"] for job in state.revive()] == [later], "the finished one is not"


def test_dead_letters_are_kept_listed_and_queued_again_in_a_new_place(redis_url):
    state = SharedState(client(redis_url), "t")
    seq = state.enqueue("ch", "fp", 60)
    state.tripped("ch", 1.0, 5, 10.0)
    assert state.begin("ch", "fp", seq, "task", 10).tripped
    state.to_retry("ch", "fp", "task", seq, 1.0, {"attempt": 2}, retrying=False)
    assert state.counts()["ch"] == {"queued": 0, "retry": 1, "dead": 0}
    payload = {"channel": "ch", "attempt": 3, "alert": {"title": "Disk", "fingerprint": "fp"}}
    record = {"payload": payload, "error": "HTTP 400", "died_at": 9.0}
    dead_id = state.finish("ch", "fp", seq, "task", "dead", record=record, retrying=True)
    assert state.counts()["ch"] == {"queued": 0, "retry": 0, "dead": 1}
    dead = DeadLetters(state)
    (letter,) = dead.letters()
    assert (letter.id, letter.channel, letter.attempts, letter.error) == (
        dead_id,
        "ch",
        3,
        "HTTP 400",
    )
    taken = dead.take(dead_id, 60)
    assert taken is not None and taken[0] > seq
    assert dead.take(dead_id, 60) is None
    assert state.counts()["ch"] == {"queued": 1, "retry": 0, "dead": 0}
    assert state.begin("ch", "fp", taken[0], "again", 10).step == "go"


def test_one_token_fetch_serves_every_process_and_thread(redis_url):
    fetched = []

    def fetch() -> tuple[str, float]:
        fetched.append(1)
        time.sleep(0.2)  # a slow provider: every other caller arrives while it runs
        return f"tok-{uuid.uuid4().hex}", 7200.0

    caches = [
        TokenCache(fetch, identity="corp", store=RedisTokenStore(client(redis_url), "t"))
        for _ in range(4)  # four processes
    ]
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda c=c: got.append(c.get())) for c in caches for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(fetched) == 1
    assert len(got) == 32 and len(set(got)) == 1


def test_a_failed_fetch_lets_the_next_caller_fetch_and_invalidate_is_shared(redis_url):
    answers = iter([AuthError("bad secret"), ("tok-2", 7200.0), ("tok-3", 7200.0)])

    def fetch() -> tuple[str, float]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    one = TokenCache(fetch, identity="corp", store=RedisTokenStore(client(redis_url), "t"))
    other = TokenCache(fetch, identity="corp", store=RedisTokenStore(client(redis_url), "t"))
    with pytest.raises(AuthError):
        one.get()
    assert other.get() == "tok-2"
    assert one.get() == "tok-2"
    one.invalidate("tok-2")
    other.clear()
    assert other.get() == "tok-3"


def test_an_unreachable_redis_is_a_clear_error_naming_the_server_without_its_password():
    port = 1  # nothing listens there
    state = SharedState.open(f"redis://:hunter2@127.0.0.1:{port}/0", "t", timeout=0.5)
    with pytest.raises(QueueUnavailable) as failed:
        state.enqueue("ch", "fp", 60)
    assert f"127.0.0.1:{port}" in str(failed.value)
    assert "hunter2" not in str(failed.value)
    assert failed.value.retryable
