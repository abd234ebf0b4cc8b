"""The ``slack`` kind passes the channel contract against the fake Slack."""

from __future__ import annotations

import pytest
from notifier_slack import plugin
from notifier_slack.blocks import TEXT_CHARS
from notifier_slack.testing import FakeSlack

from notifier.testing.contract import ChannelContract


class TestSlackContract(ChannelContract):
    kind = "slack"
    plugin = plugin
    # Slack counts 40,000 characters of text; a character is at most 4 UTF-8 bytes.
    max_bytes = 4 * TEXT_CHARS

    @pytest.fixture
    def provider(self, contract_clock):
        with FakeSlack(clock=contract_clock) as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {"url": provider.webhook("#alerts")}

    def fail_permanently(self, provider):
        provider.archive("#alerts")

    def fail_retryably(self, provider):
        provider.rate_limit_next(10, retry_after=2)

    def received(self, provider):
        # The text as sent (the fake, like Slack, would cut it at 40,000 characters).
        return [message.payload["text"] for message in provider.messages()]

    def test_a_huge_alert_is_sent_within_slacks_character_limits(
        self, contract_host, channel, provider
    ):
        from notifier.testing.samples import huge_alert

        self.send(contract_host, channel, huge_alert(at_least=400_000))
        [message] = provider.messages()
        assert not message.truncated
        assert len(message.blocks) <= 50
