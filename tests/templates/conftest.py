"""The fake providers of every kind, and a plain webhook receiver, for template tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from notifier_dingtalk.testing import FakeDingTalk
from notifier_email.testing import FakeSMTP
from notifier_feishu.testing import FakeFeishu
from notifier_slack.testing import FakeSlack
from notifier_wework.testing import FakeWeCom

from notifier.testing.server import LocalServer


@pytest.fixture
def providers() -> Iterator[dict[str, Any]]:
    hook = LocalServer()
    hook.route("POST", "/in", lambda request: {"id": "1"})
    hook.route("POST", "/hook", lambda request: {"ok": True})
    with (
        FakeWeCom() as wecom,
        FakeDingTalk() as dingtalk,
        FakeFeishu() as feishu,
        FakeSlack() as slack,
        FakeSMTP() as smtp,
        hook,
    ):
        yield {
            "wecom": wecom,
            "dingtalk": dingtalk,
            "feishu": feishu,
            "slack": slack,
            "smtp": smtp,
            "hook": hook,
        }
