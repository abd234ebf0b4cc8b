"""pytest fixtures for testing notifier configurations against a fake WeCom.

Registered through the ``pytest11`` entry point when ``notifier-wework`` is installed, so
the fixtures are available in any test session::

    def test_my_robot_config(wework_server, wework_clock):
        ...  # point the channel's api_root at wework_server.api_root
        assert wework_server.robot_messages()[0].content.startswith("[FIRING]")

Without the entry point (``-p no:notifier_wework``), add
``pytest_plugins = ["notifier_wework.pytest_plugin"]`` to the root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.clock import FakeClock
from notifier_wework.testing import FakeWeCom


@pytest.fixture
def wework_clock() -> FakeClock:
    """The clock that drives the fake server's token expiry and robot window."""
    return FakeClock()


@pytest.fixture
def wework_server(wework_clock: FakeClock) -> Iterator[FakeWeCom]:
    """A started :class:`~notifier_wework.testing.FakeWeCom` on 127.0.0.1, stopped after
    the test. Its tokens and robot window follow ``wework_clock``."""
    with FakeWeCom(clock=wework_clock) as server:
        yield server
