"""A real Redis, real worker processes and a recording sink for the ``[celery]`` tests.

Redis: the one listening on 127.0.0.1:6379 when it answers (database 11, flushed before
and after each test), else a ``redis-server`` this session starts on a free port, else
the tests skip, saying why. A test that stops Redis starts its own (:class:`RedisServer`).

Workers are ``python -m notifier worker`` processes (the thread pool) with the test's
configuration; a test kills one with SIGKILL as an operator's ``kill -9`` would.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery_support import DB, SHARED, RedisServer, Sink, Workers, answers, needs_redis_binary


@pytest.fixture(scope="session")
def redis_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL with a database of the tests' own."""
    if answers(*SHARED):
        yield f"redis://{SHARED[0]}:{SHARED[1]}/{DB}"
        return
    if shutil.which("redis-server") is None:
        pytest.skip("no Redis: none answers on 127.0.0.1:6379 and redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield f"redis://127.0.0.1:{server.port}/{DB}"
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_base: str) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_base)
    client.flushdb()
    try:
        yield redis_base
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis the test may stop: never the machine's shared one."""
    needs_redis_binary()
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as server:
        yield server


@pytest.fixture
def workers_for(tmp_path: Path) -> Iterator[Callable[[Path], Workers]]:
    made: list[Workers] = []

    def make(config: Path) -> Workers:
        workers = Workers(config, tmp_path)
        made.append(workers)
        return workers

    yield make
    for workers in made:
        workers.stop()
