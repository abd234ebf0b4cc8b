"""Group commit: concurrent requests' deliveries written in one transaction, each request
answered with its own share, and all of them refused together when the write fails."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from notifier.errors import OutboxError, OutboxWriteError
from notifier.models import Alert
from notifier.outbox import NewDelivery, OutboxStore
from notifier.outbox.records import Enqueued
from notifier.server import create_app
from notifier.server.app import DELIVERY_SHARE, NotifierApp
from notifier.server.commit import GroupCommit
from tests.server.conftest import BASE, serving, write_config

TOKEN = {"Authorization": "Bearer token-one"}


def deliveries(name: str, *channels: str) -> list[NewDelivery]:
    return [NewDelivery(Alert(title=name, fingerprint=name), c) for c in channels]


class Gate:
    """An enqueue that holds its first call until released, so that other requests queue
    up behind the write under way."""

    def __init__(self, enqueue: Callable[[list[NewDelivery]], list[Enqueued]]) -> None:
        self.enqueue = enqueue
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[int] = []

    def __call__(self, items: list[NewDelivery]) -> list[Enqueued]:
        self.calls.append(len(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return self.enqueue(items)


@pytest.fixture
def store(tmp_path: Path):
    made = OutboxStore.open(str(tmp_path / "outbox.db"))
    yield made
    made.close()


def test_requests_arriving_during_a_write_share_the_next_transaction(store):
    gate = Gate(lambda items: store.enqueue_many(items, now=1000.0))
    commits = GroupCommit(gate)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(commits.write, deliveries("first", "ops"))
        assert gate.entered.wait(10)
        names = [f"r{i}" for i in range(5)]
        rest = [pool.submit(commits.write, deliveries(n, "ops", "audit")) for n in names]
        assert commits.wait_for_queued(5, timeout=10)
        gate.release.set()
        answers = [f.result(timeout=10) for f in rest]
    assert [e.fingerprint for e in first.result()] == ["first"]
    assert gate.calls == [1, 10] and commits.transactions == 2
    for name, answer in zip(names, answers, strict=True):
        assert [(e.fingerprint, e.channel) for e in answer] == [(name, "ops"), (name, "audit")]
    ids = [e.id for answer in answers for e in answer]
    assert len(set(ids)) == 10
    assert sorted(d.fingerprint for d in store.get(ids).values()) == sorted(names * 2)


def test_a_failed_transaction_refuses_every_request_in_it_and_writes_none(store):
    failing = {"on": True}

    def enqueue(items: list[NewDelivery]) -> list[Enqueued]:
        if failing["on"]:
            raise OutboxError("outbox x is locked by another process", retryable=True)
        return store.enqueue_many(items, now=1000.0)

    gate = Gate(enqueue)
    commits = GroupCommit(gate)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(commits.write, deliveries("first", "ops"))
        assert gate.entered.wait(10)
        rest = [pool.submit(commits.write, deliveries(f"r{i}", "ops")) for i in range(3)]
        assert commits.wait_for_queued(3, timeout=10)
        gate.release.set()
        errors = []
        for future in [first, *rest]:
            with pytest.raises(OutboxWriteError) as caught:
                future.result(timeout=10)
            errors.append(caught.value)
    assert gate.calls == [1, 3]
    assert all(e.retryable and "locked" in str(e) for e in errors)
    assert len({id(e) for e in errors}) == 4  # one error object per request
    assert store.counts() == {}
    failing["on"] = False
    assert [e.fingerprint for e in commits.write(deliveries("again", "ops"))] == ["again"]
    assert store.counts() == {"ops": {"pending": 1}}


def test_a_transaction_takes_whole_requests_up_to_its_row_limit(store):
    gate = Gate(lambda items: store.enqueue_many(items, now=1000.0))
    commits = GroupCommit(gate, max_rows=4)
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(commits.write, deliveries("first", "ops"))
        assert gate.entered.wait(10)
        sizes = [3, 1, 2, 5]  # 3 + 1 fit; 2 starts the next; 5 alone (over the limit)
        rest = []
        for i, size in enumerate(sizes):
            channels = [f"c{k}" for k in range(size)]
            rest.append(pool.submit(commits.write, deliveries(f"r{i}", *channels)))
            assert commits.wait_for_queued(i + 1, timeout=10)
        gate.release.set()
        answers = [f.result(timeout=10) for f in rest]
    first.result(timeout=10)
    assert gate.calls == [1, 4, 2, 5]
    assert [len(a) for a in answers] == sizes


def test_nothing_to_write_is_no_transaction(store):
    commits = GroupCommit(lambda items: store.enqueue_many(items, now=1000.0))
    assert commits.write([]) == []
    assert commits.transactions == 0


def test_concurrent_posts_are_each_answered_with_their_own_stored_ids(tmp_path):
    config = write_config(tmp_path, BASE)
    app = create_app(config, env={"SERVE_TOKEN": "token-two"}, deliver=False)
    try:
        with serving(app) as url, ThreadPoolExecutor(12) as pool:

            def post(i: int) -> requests.Response:
                alert = {"status": "firing", "labels": {"alertname": f"A{i}"},
                         "startsAt": "2026-12-01T10:00:00Z", "fingerprint": f"fp{i}"}  # fmt: skip
                body = {"version": "4", "status": "firing", "groupKey": f"g{i}",
                        "alerts": [alert]}  # fmt: skip
                return requests.post(
                    url + "/api/v1/alertmanager", json=body, headers=TOKEN, timeout=10
                )

            answers = list(pool.map(post, range(40)))
        assert [a.status_code for a in answers] == [200] * 40
        ids = [a.json()["ids"] for a in answers]
        assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 40
        stored = app.engine.store.get([i[0] for i in ids])
        for i, (id_,) in enumerate(ids):  # each answer names its own notification's row
            assert f"A{i}:" in stored[id_].alert().title
        assert app.commits.transactions <= 40
    finally:
        app.close()
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 40


def test_delivery_rounds_give_way_to_requests_by_their_share(app: NotifierApp):
    assert app.delivery_share == DELIVERY_SHARE
    app.delivery_share = 0.5
    assert app._yield_after(0.2) == pytest.approx(0.2)
    app.delivery_share = 0.25
    assert app._yield_after(0.2) == pytest.approx(0.6)
    assert app._yield_after(10.0) == 1.0  # never more than a second at a time
    app.delivery_share = 1.0
    assert app._yield_after(0.2) == 0.0


def test_a_delivery_share_outside_0_to_1_is_refused(tmp_path):
    config = write_config(tmp_path, BASE)
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match="delivery_share"):
            create_app(config, env={"SERVE_TOKEN": "t"}, deliver=False, delivery_share=share)
