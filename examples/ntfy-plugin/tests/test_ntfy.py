"""The ntfy channel against a fake ntfy server on 127.0.0.1: no network needed."""

from __future__ import annotations

from typing import Any

import pytest
from notifier import Alert, Dispatcher
from notifier.clock import FakeClock
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.models import DeliveryContext, Outcome, Status
from notifier.plugins import PluginHost
from notifier.testing import LocalServer, Request, Response
from notifier.testing.contract import ChannelContract

import notifier_ntfy

TOPIC = "ops-alerts-4711"
TOKEN = "tk_7c1e9d2a5b3f"


class FakeNtfy(LocalServer):
    """Answers like ntfy's JSON publishing endpoint; can demand a token or throttle."""

    def setup(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.token: str | None = TOKEN
        self.throttled = False
        self.route("POST", "/", self.publish)

    def publish(self, request: Request) -> Response | dict[str, Any]:
        if self.throttled:
            body = {"code": 42901, "http": 429, "error": "limit reached"}
            return Response.from_json(body, 429, {"Retry-After": "60"})
        if self.token and request.header("Authorization") != f"Bearer {self.token}":
            return Response.from_json({"code": 40101, "http": 401, "error": "unauthorized"}, 401)
        message = request.json()
        self.published.append(message)
        return {"id": f"m{len(self.published)}", "event": "message", "topic": message["topic"]}


@pytest.fixture
def ntfy():
    with FakeNtfy() as server:
        yield server


def dispatcher_for(fake: FakeNtfy, **options: Any) -> Dispatcher:
    """A dispatcher with one ntfy channel, ``phone``, and only this plugin installed."""
    host = PluginHost.from_plugins([notifier_ntfy])
    table = {"kind": "ntfy", "server": fake.root, "topic": TOPIC, "token": TOKEN, **options}
    config = parse_config({"channels": {"phone": table}}, host)
    return Dispatcher(config, host=host, clock=FakeClock())


def test_an_alert_is_published_with_its_severity_as_priority(ntfy):
    with dispatcher_for(ntfy) as dispatcher:
        [receipt] = dispatcher.dispatch(Alert("Disk almost full", severity="critical"))
    assert receipt.outcome is Outcome.DELIVERED
    assert receipt.message_id == "m1"
    [message] = ntfy.published
    assert message["topic"] == TOPIC
    assert message["title"] == "[FIRING][CRITICAL] Disk almost full"
    assert message["priority"] == 5
    assert message["tags"] == ["rotating_light"]
    assert ntfy.requests[0].header("Authorization") == f"Bearer {TOKEN}"


def test_a_resolved_alert_is_published_at_low_priority_with_a_check_mark(ntfy):
    with dispatcher_for(ntfy) as dispatcher:
        dispatcher.dispatch(Alert("Disk almost full", severity="critical", status=Status.RESOLVED))
    [message] = ntfy.published
    assert message["priority"] == 2
    assert message["tags"] == ["white_check_mark"]


def test_a_rejected_token_fails_for_good_and_the_receipt_shows_no_secret(ntfy):
    ntfy.token = "a-token-we-do-not-have"
    with dispatcher_for(ntfy) as dispatcher:
        [receipt] = dispatcher.dispatch(Alert("Disk almost full"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.details["retryable"] is False
    assert TOKEN not in repr(receipt)
    assert TOPIC not in repr(receipt)


def test_a_throttled_publish_is_retryable_and_says_when_to_try_again(ntfy):
    ntfy.throttled = True
    with dispatcher_for(ntfy, max_attempts=1) as dispatcher:
        [receipt] = dispatcher.dispatch(Alert("Disk almost full"))
    assert receipt.outcome is Outcome.FAILED
    assert receipt.details["retryable"] is True
    assert receipt.details["retry_after"] == 60


def test_a_server_that_is_not_a_url_is_a_configuration_error(ntfy):
    with pytest.raises(ConfigError) as caught:
        dispatcher_for(ntfy, server="ntfy.example.com")
    [issue] = caught.value.issues
    assert (issue.path, issue.expected) == ("channels.phone.server", "an http:// or https:// URL")


def test_channels_built_by_other_plugins_are_left_to_them():
    result = notifier_ntfy.notifier_send(
        channel=object(), alert=Alert("Disk almost full"), delivery=DeliveryContext()
    )
    assert result is None


class TestNtfyContract(ChannelContract):
    """The behaviours every channel owes (docs/testing-channels.md)."""

    kind = "ntfy"
    plugin = notifier_ntfy
    max_bytes = notifier_ntfy.MAX_BYTES

    @pytest.fixture
    def provider(self):
        with FakeNtfy() as server:
            yield server

    @pytest.fixture
    def options(self, provider):
        return {"server": provider.root, "topic": TOPIC, "token": TOKEN}

    def fail_permanently(self, provider):
        provider.token = "a-revoked-token"

    def fail_retryably(self, provider):
        provider.throttled = True

    def received(self, provider):
        return [message["message"] for message in provider.published]
