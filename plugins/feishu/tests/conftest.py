"""Fixtures for the Feishu tests: a fake Feishu on a fake clock, a channel factory."""

from __future__ import annotations

import pytest
from notifier_feishu import plugin
from notifier_feishu.testing import BOT_SECRET, FakeFeishu

from notifier.clock import FakeClock
from notifier.config import parse_channel
from notifier.kinds import BuildContext
from notifier.plugins import PluginHost


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def feishu(clock):
    with FakeFeishu(clock=clock) as server:
        yield server


@pytest.fixture
def host():
    return PluginHost.from_plugins([plugin], builtins=False)


@pytest.fixture
def make_bot(host, feishu, clock):
    """``make_bot(**options)``: a built feishu-bot channel on the fake, closed after."""
    built = []

    def make(**options):
        table = {
            "kind": "feishu-bot",
            "url": feishu.webhook_url(),
            "secret": BOT_SECRET,
            "max_attempts": 2,
            **options,
        }
        table = {k: v for k, v in table.items() if v is not None}
        spec = parse_channel("ops-feishu", table, host)
        channel = host.build_channel(spec, BuildContext(clock=clock))
        built.append(channel)
        return channel

    yield make
    for channel in built:
        channel.close()
