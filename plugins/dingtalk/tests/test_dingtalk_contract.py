"""The dingtalk-robot kind passes the channel contract, signed (markdown) and unsigned
(text, split into parts)."""

from __future__ import annotations

import pytest
from notifier_dingtalk import plugin
from notifier_dingtalk.messages import CONTENT_LIMIT
from notifier_dingtalk.plugin import TOKEN_NOT_EXIST, TOO_FAST
from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN, FakeDingTalk

from notifier.testing.contract import ChannelContract


class TestSignedMarkdownRobotContract(ChannelContract):
    kind = "dingtalk-robot"
    plugin = plugin
    max_bytes = CONTENT_LIMIT

    @pytest.fixture
    def provider(self, contract_clock):
        with FakeDingTalk({ROBOT_TOKEN: ROBOT_SECRET}, clock=contract_clock) as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {"access_token": ROBOT_TOKEN, "secret": ROBOT_SECRET, "api_root": provider.root}

    def fail_permanently(self, provider):
        provider.fail_next(10, errcode=TOKEN_NOT_EXIST)

    def fail_retryably(self, provider):
        provider.fail_next(10, errcode=TOO_FAST)

    def received(self, provider):
        return [message.content for message in provider.messages]


class TestUnsignedSplittingTextRobotContract(TestSignedMarkdownRobotContract):
    @pytest.fixture
    def provider(self, contract_clock):
        with FakeDingTalk({ROBOT_TOKEN: None}, clock=contract_clock) as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {
            "access_token": ROBOT_TOKEN,
            "api_root": provider.root,
            "msgtype": "text",
            "overflow": "split",
            "max_parts": 4,
        }
