"""Fixtures for the WeWork channel tests: channels built against the fake WeCom server.

``wework_server`` and ``wework_clock`` come from the plugin's own pytest plugin; the
server's tokens and robot window and the channels' token caches share that clock.
"""

from __future__ import annotations

import logging

import pytest
from wework_support import GATEWAY_SECRET, KIND, STARTED, make_alert  # noqa: F401

from notifier.kinds import BuildContext, ChannelSpec


@pytest.fixture
def context(wework_clock):
    return BuildContext(clock=wework_clock, pool_size=32)


@pytest.fixture
def defaults(wework_server):
    """The options that reach the fake server, per kind."""
    return {
        "wework": {
            "api_root": wework_server.api_root,
            "corp_id": wework_server.corp_id,
            "secret": wework_server.secret,
        },
        "wework-robot": {"api_root": wework_server.api_root, "key": "fake-robot-key-0001"},
        "wework-gateway": {
            "gateway_root": wework_server.gateway_root,
            "app_code": "fake-app",
            "app_secret": GATEWAY_SECRET,
            "username": "alert-bot",
            "chat_id": "gw1",
        },
    }


@pytest.fixture
def build(defaults, context):
    """``build(kind, name="ops", **options)``: a channel on the fake server, closed after."""
    built = []

    def make(kind, name="ops", *, context=context, **options):
        spec = ChannelSpec(name, kind, {**defaults[kind], **options}, source="test.toml")
        channel = KIND[kind].build(spec, context)
        built.append(channel)
        return channel

    yield make
    for channel in built:
        channel.close()


@pytest.fixture
def debug_logs(caplog):
    """Every logger at DEBUG (urllib3's request lines included), captured."""
    caplog.set_level(logging.DEBUG)
    return caplog
