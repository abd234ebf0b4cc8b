"""The ``email`` kind passes the channel contract against a real SMTP server."""

from __future__ import annotations

import pytest
from notifier_email import plugin
from notifier_email.message import TEXT_PART_BYTES
from notifier_email.testing import FakeSMTP

from notifier.testing.contract import ChannelContract


class TestEmailContract(ChannelContract):
    kind = "email"
    plugin = plugin
    max_bytes = TEXT_PART_BYTES  # the plain-text part

    @pytest.fixture
    def provider(self):
        with FakeSMTP(security="starttls") as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        options = provider.channel_options(to=["ops@example.com", "dba@example.com"])
        del options["kind"]
        return options

    def fail_permanently(self, provider):
        provider.refuse("ops@example.com")
        provider.refuse("dba@example.com")

    def fail_retryably(self, provider):
        # MAIL comes before RCPT, so this wins over the refusals above.
        provider.fail_next(421, "4.3.2 Service shutting down", step="mail", count=10)

    def make_silent(self, provider):
        provider.stall_next(60, step="mail", count=100)

    def received(self, provider):
        return [mail.part("plain") for mail in provider.messages]
