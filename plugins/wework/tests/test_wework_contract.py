"""The channel contract (``notifier.testing.contract``), run for every way into WeCom."""

from __future__ import annotations

import pytest
from notifier_wework import plugin
from notifier_wework.messages import MARKDOWN_LIMIT, TEXT_LIMIT
from notifier_wework.testing import Chat, FakeWeCom

from notifier.testing.contract import ChannelContract

ROBOT_KEY = "contract-robot-key-8c1f"
GATEWAY_SECRET = "contract-gateway-secret-5d2e"
RETRIES = 10  # "keep failing": a channel may retry within one send


class WeComContract(ChannelContract):
    """The fake server, with the chat the group-chat kinds send to."""

    max_bytes = TEXT_LIMIT

    @pytest.fixture
    def provider(self, contract_clock):
        server = FakeWeCom(
            clock=contract_clock,
            secret="contract-app-secret-3b7a",
            robot_keys=[ROBOT_KEY],
            gateway_apps={"contract-app": GATEWAY_SECRET},
        )
        with server:
            server.chats["c1"] = Chat("c1", "oncall", "zhangsan", ["zhangsan", "lisi"])
            yield server

    def received(self, provider):
        return [s.content for s in provider.sent]


class TestDirectGroupChatContract(WeComContract):
    kind = "wework"
    plugin = plugin

    @pytest.fixture
    def options(self, provider):
        return {
            "api_root": provider.api_root,
            "corp_id": provider.corp_id,
            "secret": provider.secret,
            "chat_id": "c1",
        }

    def fail_permanently(self, provider):
        provider.apps.clear()  # the secret no longer exists: 40014, then gettoken 40001
        provider.forget_tokens()

    def fail_retryably(self, provider):
        provider.fail_next(RETRIES, "busy", path="appchat/send")


class TestDirectApplicationMessageContract(TestDirectGroupChatContract):
    max_bytes = MARKDOWN_LIMIT

    @pytest.fixture
    def options(self, provider):
        return {
            "api_root": provider.api_root,
            "corp_id": provider.corp_id,
            "secret": provider.secret,
            "agent_id": provider.agent_id,
            "to_user": ["zhangsan"],
            "msgtype": "markdown",
            "enable_duplicate_check": True,
        }

    def fail_retryably(self, provider):
        provider.fail_next(RETRIES, "errcode", errcode=45033, path="message/send")


class TestGatewayContract(WeComContract):
    kind = "wework-gateway"
    plugin = plugin

    @pytest.fixture
    def options(self, provider):
        return {
            "gateway_root": provider.gateway_root,
            "app_code": "contract-app",
            "app_secret": GATEWAY_SECRET,
            "username": "alert-bot",
            "chat_id": "c1",
        }

    def fail_permanently(self, provider):
        provider.gateway_apps.clear()

    def fail_retryably(self, provider):
        provider.fail_next(RETRIES, "busy", path="send_appchat/")


class TestRobotContract(WeComContract):
    kind = "wework-robot"
    plugin = plugin

    @pytest.fixture
    def options(self, provider):
        return {"api_root": provider.api_root, "key": ROBOT_KEY}

    def fail_permanently(self, provider):
        provider.disable_robot(ROBOT_KEY)

    def fail_retryably(self, provider):
        provider.fail_next(RETRIES, "rate", path="webhook/send")
