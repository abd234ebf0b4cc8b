"""Fixtures for the DingTalk tests: a fake DingTalk on a fake clock, a channel factory."""

from __future__ import annotations

import pytest
from notifier_dingtalk import plugin
from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN, FakeDingTalk

from notifier.clock import FakeClock
from notifier.config import parse_channel
from notifier.kinds import BuildContext
from notifier.plugins import PluginHost


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def dingtalk(clock):
    with FakeDingTalk(clock=clock) as server:
        yield server


@pytest.fixture
def host():
    return PluginHost.from_plugins([plugin], builtins=False)


@pytest.fixture
def make_robot(host, dingtalk, clock):
    """``make_robot(**options)``: a built dingtalk-robot channel on the fake, closed after."""
    built = []

    def make(**options):
        table = {
            "kind": "dingtalk-robot",
            "access_token": ROBOT_TOKEN,
            "secret": ROBOT_SECRET,
            "api_root": dingtalk.api_root,
            "max_attempts": 2,
            **options,
        }
        table = {k: v for k, v in table.items() if v is not None}
        spec = parse_channel("ops-dingtalk", table, host)
        channel = host.build_channel(spec, BuildContext(clock=clock))
        built.append(channel)
        return channel

    yield make
    for channel in built:
        channel.close()
