"""Real worker processes against a real Redis: what users were promised of ``[celery]``.

Repeats after a killed worker are bounded by docs/scale-out.md: at most the killed
worker's ``concurrency`` deliveries (those it had sent but not recorded).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery_support import ROOT, celery_config, wait_for

from notifier.dispatcher import Dispatcher
from notifier.models import Alert, Outcome

pytestmark = pytest.mark.slow


def alerts(count: int, prefix: str = "alert") -> list[Alert]:
    return [Alert(title=f"{prefix} {i}", labels={"n": str(i)}) for i in range(count)]


def dispatch(config: Path, batch: list[Alert]) -> None:
    with Dispatcher.from_config(config) as dispatcher:
        receipts = dispatcher.dispatch_many(batch)
    assert {r.outcome for r in receipts} == {Outcome.QUEUED}, receipts[:3]


def notifier(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notifier", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_every_alert_reaches_both_channels_when_a_worker_is_killed_mid_way(
    redis_url, sink, workers_for, tmp_path
):
    channels = {"a": f"{sink.url}/a", "b": f"{sink.url}/b"}
    config = celery_config(tmp_path / "n.toml", redis_url, channels)
    workers = workers_for(config)
    doomed, _survivor = workers.start(2, concurrency=8)
    dispatch(config, alerts(1000))
    sink.wait_count(600)
    workers.kill(doomed)
    sink.wait_count(2000, timeout=60)
    wait_for(lambda: _all_recorded(config), 30, "every delivery recorded")

    seen = collections.Counter((path, title) for _, path, title, _ in sink.arrivals)
    expected = {(p, f"alert {i}") for p in ("/a", "/b") for i in range(1000)}
    assert set(seen) == expected
    repeats = sum(n - 1 for n in seen.values())
    assert repeats <= 8, f"{repeats} repeats, more than the killed worker's concurrency"
    keys = {(path, key) for _, path, _, key in sink.arrivals}
    assert len(keys) == 2000, "a repeat carries the idempotency key of its first send"


def _all_recorded(config: Path) -> bool:
    done = notifier("queue", "--config", config, "--json")
    counts = json.loads(done.stdout)["channels"]
    return all(c["queued"] == c["retry"] == c["dead"] == 0 for c in counts.values())


def test_a_channel_limited_to_10_a_second_never_gets_more_across_two_workers(
    redis_url, sink, workers_for, tmp_path
):
    config = celery_config(
        tmp_path / "n.toml",
        redis_url,
        {"limited": f"{sink.url}/limited"},
        extra_channel="rate_limit = { count = 10, per = 1 }",
    )
    workers = workers_for(config)
    workers.start(2, concurrency=8)
    dispatch(config, alerts(35))
    sink.wait_count(35, timeout=30)
    times = sorted(t for t, *_ in sink.arrivals)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 10, [round(t - times[0], 3) for t in times]
    assert times[-1] - times[0] >= 3.0  # 35 at 10 a second


def test_32_cold_deliveries_to_wecom_across_two_workers_fetch_one_token(
    redis_url, workers_for, tmp_path
):
    from notifier_wework.testing import FakeWeCom

    with FakeWeCom() as wecom:
        config = tmp_path / "n.toml"
        config.write_text(
            f"""
[channels.ops]
kind = "wework"
corp_id = "{wecom.corp_id}"
secret = "{wecom.secret}"
agent_id = {wecom.agent_id}
to_user = ["zhangsan"]
api_root = "{wecom.api_root}"

[[routes]]
channels = ["ops"]

[celery]
broker = "{redis_url}"
queue = "test-wecom-{time.monotonic_ns()}"
"""
        )
        workers = workers_for(config)
        workers.start(1, concurrency=16)
        workers.start(1, concurrency=16, celery_command=True)  # celery -A notifier.celery
        dispatch(config, alerts(32))
        wait_for(lambda: len(wecom.app_messages()) >= 32, 30, "32 messages at the fake")
        assert len(wecom.calls_to("gettoken")) == 1


def test_redis_stopped_for_10_seconds_loses_nothing_and_workers_resume(
    own_redis, sink, workers_for, tmp_path
):
    config = celery_config(tmp_path / "n.toml", own_redis.url, {"a": f"{sink.url}/a"})
    workers = workers_for(config)
    workers.start(2, concurrency=4)
    dispatch(config, alerts(200, "before"))
    sink.wait_count(20)
    own_redis.stop()

    refused = notifier("send", "--config", config, "--title", "during the outage")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert f"127.0.0.1:{own_redis.port}" in refused.stderr
    time.sleep(10)  # the outage itself, not a wait for something to happen

    own_redis.start()
    dispatch(config, alerts(50, "after"))
    wanted = {f"before {i}" for i in range(200)} | {f"after {i}" for i in range(50)}
    wait_for(lambda: wanted <= {title for _, _, title, _ in sink.arrivals}, 60, "every alert")
    assert all(p.poll() is None for p in workers.processes), "a worker gave up"


def test_send_with_the_broker_down_exits_1_with_one_clear_line(sink, tmp_path):
    config = celery_config(tmp_path / "n.toml", "redis://127.0.0.1:1/0", {"a": f"{sink.url}/a"})
    done = notifier("send", "--config", config, "--title", "Disk full")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "cannot be reached" in done.stderr
    assert sink.count() == 0


def test_dead_letters_are_listed_and_queued_again_with_notifier_queue(
    redis_url, sink, workers_for, tmp_path
):
    config = celery_config(tmp_path / "n.toml", redis_url, {"a": f"{sink.url}/a"})
    sink.status = 400  # a permanent refusal: dead at once
    workers = workers_for(config)
    workers.start(1)
    dispatch(config, alerts(3))

    def dead() -> int:
        shown = json.loads(notifier("queue", "--config", config, "--json").stdout)
        return int(shown["channels"].get("a", {}).get("dead", 0))

    wait_for(lambda: dead() == 3, 30, "three dead letters")
    listed = json.loads(notifier("queue", "--config", config, "--dead", "--json").stdout)
    assert sorted(d["title"] for d in listed) == ["alert 0", "alert 1", "alert 2"]
    assert all("400" in d["last_error"] for d in listed)

    sink.status = 200
    first = listed[0]["id"]
    retried = notifier("queue", "--config", config, "--retry", str(first), "999")
    assert retried.returncode == 1 and "999" in retried.stderr
    assert notifier("queue", "--config", config, "--retry", "--all").returncode == 0
    wait_for(lambda: sink.count() >= 6, 30, "the dead letters delivered")
    assert dead() == 0


def _call(app, method: str, path: str, body: bytes = b"") -> tuple[str, dict]:
    import io
    from wsgiref.util import setup_testing_defaults

    environ: dict = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    answered: list[str] = []
    chunks = app(environ, lambda status, headers, *_: answered.append(status))
    return answered[0], json.loads(b"".join(chunks) or b"{}")


def test_notifier_serve_queues_tasks_for_the_workers_and_is_unready_without_redis(
    redis_url, sink, workers_for, tmp_path
):
    from notifier.server import create_app

    config = celery_config(tmp_path / "n.toml", redis_url, {"a": f"{sink.url}/a"})
    workers_for(config).start(1)
    app = create_app(config)
    try:
        body = json.dumps([{"title": "From serve 1"}, {"title": "From serve 2"}]).encode()
        status, answer = _call(app, "POST", "/api/v1/alerts", body)
        assert status.startswith("200"), answer
        assert answer["accepted"] == 2 and len(answer["ids"]) == 2
        assert _call(app, "GET", "/readyz")[0].startswith("200")
        sink.wait_count(2, timeout=30)
    finally:
        app.close()

    down = celery_config(tmp_path / "down.toml", "redis://127.0.0.1:1/0", {"a": f"{sink.url}/a"})
    app = create_app(down)
    try:
        assert _call(app, "GET", "/readyz")[0].startswith("503")
        status, answer = _call(app, "POST", "/api/v1/alerts", b'{"title": "lost?"}')
        assert status.startswith("503") and "cannot be reached" in json.dumps(answer)
    finally:
        app.close()


def test_a_notifications_message_reaches_the_workers_with_its_group_for_the_template(
    redis_url, sink, workers_for, tmp_path
):
    from notifier.server import create_app
    from tests.server.samples import am_alert, notification

    template = """template = { text = '{"title": "{{ group.counts.total }} alerts"}' }"""
    config = celery_config(
        tmp_path / "n.toml", redis_url, {"a": f"{sink.url}/a"}, extra_channel=template
    )
    workers_for(config).start(1)
    app = create_app(config)
    try:
        body = json.dumps(notification([am_alert(1), am_alert(2), am_alert(3)])).encode()
        status, answer = _call(app, "POST", "/api/v1/alertmanager", body)
        assert status.startswith("200"), answer
        sink.wait_count(1, timeout=30)
    finally:
        app.close()
    assert [title for _, _, title, _ in sink.arrivals] == ["3 alerts"]
