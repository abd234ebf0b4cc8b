"""The ``wework-gateway`` kind: app group chats through the enterprise API gateway."""

from __future__ import annotations

import json
import re

import pytest
from notifier_wework import plugin
from wework_support import GATEWAY_SECRET, make_alert

from notifier.errors import AuthError, ProviderError, UnsupportedOperation
from notifier.models import DeliveryContext, GroupSpec, GroupUpdate

ONCALL = GroupSpec("oncall", owner="zhangsan", members=["lisi"])


def send(channel, alert=None, **delivery):
    return plugin.notifier_send(
        channel=channel, alert=alert or make_alert(), delivery=DeliveryContext(**delivery)
    )


def test_a_group_created_through_the_gateway_then_receives_alerts(build, wework_server):
    channel = build("wework-gateway", msgtype="markdown")
    info = plugin.notifier_create_group(channel=channel, group=ONCALL)
    assert info.chat_id == "gw1"

    result = send(channel)

    (sent,) = wework_server.chat_messages("gw1")
    assert sent.via == "gateway" and sent.msgtype == "markdown"
    (call,) = wework_server.calls_to("gateway/send_appchat")
    (request_id,) = result.details["request_ids"]  # the gateway's, kept for support
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    auth = json.loads(call.headers["x-bkapi-authorization"])
    assert auth == {
        "bk_app_code": "fake-app",
        "bk_app_secret": GATEWAY_SECRET,
        "bk_username": "alert-bot",
    }
    assert "bk_app_secret" not in call.body  # header only, unless asked


def test_older_gateways_get_the_credentials_in_the_body_too(build, wework_server):
    channel = build("wework-gateway", auth_in_body=True)
    plugin.notifier_create_group(channel=channel, group=ONCALL)
    send(channel)
    (call,) = wework_server.calls_to("gateway/send_appchat")
    assert call.body["bk_app_code"] == "fake-app" and call.body["bk_username"] == "alert-bot"
    assert "bk_app_secret" not in wework_server.chat_messages("gw1")[0].body


def test_a_rejected_app_secret_is_an_auth_error_with_the_gateway_request_id(build, wework_server):
    channel = build("wework-gateway", app_secret="wrong-secret-5c4b3a")
    with pytest.raises(AuthError) as caught:
        send(channel)
    text = str(caught.value)
    assert "channel 'ops', send_appchat: gateway code 1640001: the gateway rejected" in text
    (call,) = wework_server.calls_to("gateway/send_appchat")
    assert f"gateway request id {caught.value.request_id}" in text
    assert "wrong-secret-5c4b3a" not in text and not caught.value.retryable
    assert call.errcode == 1640001


def test_an_unknown_chat_through_the_gateway_names_the_code_and_what_to_do(build):
    with pytest.raises(ProviderError) as caught:
        send(build("wework-gateway"))
    assert caught.value.code == 86001 and not caught.value.retryable
    assert "errcode 86001: the chat id is unknown: create the group first" in str(caught.value)


def test_busy_behind_the_gateway_is_retryable(build, wework_server):
    channel = build("wework-gateway")
    plugin.notifier_create_group(channel=channel, group=ONCALL)
    wework_server.fail_next(1, "busy", path="send_appchat/")
    with pytest.raises(ProviderError) as caught:
        send(channel)
    assert caught.value.code == -1 and caught.value.retryable


def test_reading_or_changing_a_group_through_the_gateway_is_unsupported_and_says_why(build):
    channel = build("wework-gateway")
    with pytest.raises(UnsupportedOperation, match="offers create_appchat/ and send_appchat/"):
        plugin.notifier_get_group(channel=channel, chat_id="gw1")
    with pytest.raises(UnsupportedOperation, match="use a 'wework' channel"):
        plugin.notifier_update_group(channel=channel, chat_id="gw1", update=GroupUpdate(name="x"))
