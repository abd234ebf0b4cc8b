"""The feishu-bot kind passes the channel contract: a signed bot sending cards, and an
unsigned one sending text split into parts."""

from __future__ import annotations

import pytest
from notifier_feishu import plugin
from notifier_feishu.messages import BODY_LIMIT
from notifier_feishu.plugin import FREQUENCY_LIMITED, SIGN_FAILED
from notifier_feishu.testing import BOT_SECRET, BOT_TOKEN, FakeFeishu

from notifier.testing.contract import ChannelContract


class TestSignedCardBotContract(ChannelContract):
    kind = "feishu-bot"
    plugin = plugin
    max_bytes = BODY_LIMIT  # Feishu limits the whole request body

    @pytest.fixture
    def provider(self, contract_clock):
        with FakeFeishu({BOT_TOKEN: BOT_SECRET}, clock=contract_clock) as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {"url": provider.webhook_url(), "secret": BOT_SECRET}

    def fail_permanently(self, provider):
        provider.fail_next(10, code=SIGN_FAILED)

    def fail_retryably(self, provider):
        provider.fail_next(10, code=FREQUENCY_LIMITED)

    def received(self, provider):
        return [message.raw for message in provider.messages]


class TestUnsignedSplittingTextBotContract(TestSignedCardBotContract):
    @pytest.fixture
    def provider(self, contract_clock):
        with FakeFeishu({BOT_TOKEN: None}, clock=contract_clock) as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {"url": provider.webhook_url(), "msgtype": "text", "overflow": "split"}
