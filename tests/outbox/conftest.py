"""Fixtures for the outbox: a fake clock, stores, a scriptable provider, an engine factory."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from outbox_support import Provider

from notifier.clock import FakeClock
from notifier.outbox import InlineRunner, OutboxDelivery, OutboxSettings, OutboxStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider(clock: FakeClock) -> Provider:
    return Provider(clock)


@pytest.fixture
def store() -> Iterator[OutboxStore]:
    s = OutboxStore.open(":memory:")
    yield s
    s.close()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "outbox.db")


@pytest.fixture
def make_engine(clock: FakeClock, provider: Provider):
    """``make_engine(store=None, rate_limits=None, **settings)``: an engine on a fake clock."""
    made: list[OutboxDelivery] = []

    def make(store: OutboxStore | None = None, rate_limits=None, **settings: Any):
        settings.setdefault("path", ":memory:")
        settings.setdefault("dedup_window", 0.0)
        config = OutboxSettings(**settings)
        store = store or OutboxStore.open(config.path)
        engine = OutboxDelivery(
            store,
            provider,
            settings=config,
            rate_limits=rate_limits,
            clock=clock,
            runner=InlineRunner(),
            rng=random.Random(7),
        )
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
