"""The dingtalk-robot channel against the fake DingTalk: signing, messages, mentions,
limits and error mapping."""

from __future__ import annotations

import pytest
import requests
from notifier_dingtalk.auth import RobotAuth, signature
from notifier_dingtalk.messages import CONTENT_LIMIT, Mentions, render_messages
from notifier_dingtalk.plugin import (
    BUSY,
    ROBOT_DISABLED,
    SECURITY,
    TOKEN_NOT_EXIST,
    TOO_FAST,
)
from notifier_dingtalk.testing import ROBOT_TOKEN, robot_signature

from notifier.config import parse_channel
from notifier.errors import AuthError, ConfigError, ProviderError, RateLimited
from notifier.models import DeliveryContext
from notifier.redact import Secret
from notifier.render import byte_len
from notifier.testing.samples import huge_alert, resolved, sample_alert


def send(channel, alert=None, mentions=()):
    return channel.send(alert or sample_alert(), DeliveryContext(mentions=tuple(mentions)))


# -- signing -----------------------------------------------------------------------------


def test_a_signed_robot_sends_a_millisecond_timestamp_and_a_signature_the_fake_accepts(
    make_robot, dingtalk, clock
):
    send(make_robot())
    (request,) = dingtalk.requests_to("/robot/send")
    assert request.query["access_token"] == ROBOT_TOKEN
    assert request.query["timestamp"] == str(int(clock.time() * 1000))
    assert request.query["sign"] == robot_signature(
        dingtalk.robots[ROBOT_TOKEN], int(clock.time() * 1000)
    )
    assert dingtalk.answers == [0]


def test_a_signature_with_plus_and_slash_is_url_encoded_on_the_wire():
    # Find a timestamp whose base64 signature has "+" or "/", which a raw query would break.
    stamp = next(
        t for t in range(1_700_000_000_000, 1_700_000_001_000) if "+" in signature("s3cr3t", t)
    )
    request = requests.Request("POST", "http://127.0.0.1/robot/send").prepare()

    class Clock:
        def time(self):
            return stamp / 1000

    RobotAuth(Secret("token-123456"), Secret("s3cr3t"), clock=Clock())(request)
    query = request.url.split("?", 1)[1]
    assert "%2B" in query and "+" not in query
    assert requests.utils.unquote(query.split("sign=")[1]) == signature("s3cr3t", stamp)


def test_a_wrong_signing_secret_is_a_permanent_auth_error(make_robot, dingtalk):
    with pytest.raises(AuthError) as info:
        send(make_robot(secret="SECnot-the-robots-secret"))
    assert info.value.retryable is False
    assert info.value.code == SECURITY
    assert "sign not match" in str(info.value)
    assert dingtalk.messages == []


def test_a_clock_more_than_an_hour_off_is_refused_as_an_invalid_timestamp(
    make_robot, dingtalk, clock
):
    robot = make_robot()
    dingtalk.clock = type(clock)(start=clock.time() + 3601)
    with pytest.raises(AuthError, match="invalid timestamp"):
        send(robot)


def test_an_unsigned_robot_sends_no_timestamp_or_signature(make_robot, dingtalk):
    dingtalk.robots[ROBOT_TOKEN] = None
    send(make_robot(secret=None))
    (request,) = dingtalk.requests_to("/robot/send")
    assert set(request.query) == {"access_token"}


def test_a_webhook_url_pasted_as_the_access_token_is_a_config_error_naming_the_key(host):
    url = "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456"
    with pytest.raises(ConfigError) as info:
        parse_channel("ops", {"kind": "dingtalk-robot", "access_token": url}, host)
    assert info.value.issues[0].path == "channels.ops.access_token"
    assert "access_token alone, not its webhook URL (its access_token= value)" in str(info.value)
    assert "abcdef123456" not in str(info.value)


# -- messages ----------------------------------------------------------------------------


def test_markdown_is_the_default_with_the_headline_as_title_and_coloured_status(
    make_robot, dingtalk
):
    send(make_robot())
    (message,) = dingtalk.messages
    assert message.msgtype == "markdown"
    assert message.body["markdown"]["title"] == "[FIRING][CRITICAL] 数据库主库磁盘使用率过高"
    assert '<font color="#D93025">[FIRING][CRITICAL]</font>' in message.content
    assert "[Dashboard](https://grafana.example/d/disk)" in message.content


def test_a_resolved_alert_shows_resolved_in_green(make_robot, dingtalk):
    send(make_robot(), resolved(sample_alert()))
    assert '<font color="#188038">[RESOLVED]</font>' in dingtalk.messages[0].content


def test_text_messages_carry_the_plain_rendering(make_robot, dingtalk):
    send(make_robot(msgtype="text"))
    (message,) = dingtalk.messages
    assert message.msgtype == "text"
    assert message.content.startswith("[FIRING][CRITICAL] 数据库主库磁盘使用率过高\n")


def test_route_mentions_become_the_at_object_and_at_text(make_robot, dingtalk):
    robot = make_robot(at_user_ids=["oncall-lead"])
    send(robot, mentions=["@all", "138-0013-8000", "@zhangsan"])
    (message,) = dingtalk.messages
    assert message.mentions == {
        "atMobiles": ["13800138000"],
        "atUserIds": ["oncall-lead", "zhangsan"],
        "isAtAll": True,
    }
    assert message.content.endswith("\n\n@13800138000 @oncall-lead @zhangsan")


def test_no_mentions_means_no_at_object(make_robot, dingtalk):
    send(make_robot())
    assert "at" not in dingtalk.messages[0].body


def test_a_huge_alert_is_truncated_to_the_content_limit_by_default(make_robot, dingtalk):
    result = send(make_robot(), huge_alert(3 * CONTENT_LIMIT))
    (message,) = dingtalk.messages
    assert result.parts == 1
    assert CONTENT_LIMIT - 100 < byte_len(message.content) <= CONTENT_LIMIT
    assert message.content.endswith("…[truncated]")


def test_split_sends_numbered_parts_up_to_max_parts_with_mentions_on_the_first(
    make_robot, dingtalk
):
    robot = make_robot(overflow="split", max_parts=3, msgtype="text")
    result = send(robot, huge_alert(10 * CONTENT_LIMIT), mentions=["13800138000"])
    contents = [m.content for m in dingtalk.messages]
    assert result.parts == 3 and len(contents) == 3
    assert [c[:6] for c in contents] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert all(byte_len(c) <= CONTENT_LIMIT for c in contents)
    assert "at" in dingtalk.messages[0].body and "at" not in dingtalk.messages[1].body
    assert contents[0].endswith("@13800138000") and contents[2].endswith("…[truncated]")


def test_every_part_after_the_first_waits_for_its_own_pacing_slot(make_robot, dingtalk):
    paced = []
    delivery = DeliveryContext(pace=lambda: paced.append(len(dingtalk.messages)) or 0.0)
    make_robot(overflow="split", max_parts=3).send(huge_alert(3 * CONTENT_LIMIT), delivery)
    assert paced == [1, 2]  # before the second and the third message, not before the first


def test_a_lower_limit_is_respected_exactly_for_mixed_emoji_text():
    messages = render_messages(huge_alert(5000), msgtype="text", limit=301, overflow="split")
    assert all(byte_len(m["text"]["content"]) <= 301 for m in messages)
    assert Mentions.parse(["@all"]).at() == {"atMobiles": [], "atUserIds": [], "isAtAll": True}


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "error_type", "retryable"),
    [
        (TOKEN_NOT_EXIST, AuthError, False),
        (ROBOT_DISABLED, AuthError, False),
        (TOO_FAST, RateLimited, True),
        (BUSY, ProviderError, True),
        (40035, ProviderError, False),
    ],
)
def test_dingtalk_error_codes_map_onto_the_error_tree(
    make_robot, dingtalk, errcode, error_type, retryable
):
    dingtalk.fail_next(5, errcode=errcode)
    with pytest.raises(error_type) as info:
        send(make_robot())
    assert info.value.retryable is retryable
    assert info.value.code == errcode
    assert f"errcode {errcode}" in str(info.value)


def test_too_fast_suggests_waiting_out_the_ten_minute_throttle_without_sleeping(
    make_robot, dingtalk, clock
):
    dingtalk.fail_next(5, errcode=TOO_FAST)
    with pytest.raises(RateLimited) as info:
        send(make_robot())
    assert info.value.retry_after == 600
    assert clock.sleeps == []  # longer than the client's max wait: left to the dispatcher
    assert info.value.attempts == 1


def test_the_21st_message_in_a_minute_is_refused_and_the_robot_stays_throttled(
    make_robot, dingtalk, clock
):
    robot = make_robot()
    for _ in range(20):
        send(robot)
    with pytest.raises(RateLimited):
        send(robot)
    clock.advance(61)
    with pytest.raises(RateLimited):
        send(robot)  # still inside the ten-minute throttle
    clock.advance(600)
    send(robot)
    assert len(dingtalk.messages) == 21


def test_a_failed_second_part_says_how_many_parts_went_out(make_robot, dingtalk):
    robot = make_robot(overflow="split", max_parts=3)
    original = dingtalk._send
    calls = []

    def refuse_second(request):
        calls.append(request)
        if len(calls) == 2:
            dingtalk.fail_next(1, errcode=TOKEN_NOT_EXIST)
        return original(request)

    dingtalk.route("POST", "/robot/send", refuse_second)
    with pytest.raises(AuthError, match=r"\[part 2/3 failed, 1 sent before it\]"):
        send(robot, huge_alert(3 * CONTENT_LIMIT))
    assert len(dingtalk.messages) == 1


def test_a_gateway_error_page_is_a_retryable_provider_error(make_robot, dingtalk):
    dingtalk.fail_next(5, errcode=None, status=502)
    with pytest.raises(ProviderError) as info:
        send(make_robot())
    assert info.value.retryable is True and info.value.code == 502


def test_the_channel_repr_shows_its_name_only(make_robot):
    robot = make_robot()
    assert repr(robot) == "DingTalkRobot('ops-dingtalk')"
    assert "signed=True" in repr(robot.client.auth)


def test_a_retry_after_a_failed_second_part_sends_each_part_exactly_once_in_order(
    make_robot, dingtalk
):
    robot = make_robot(overflow="split", max_parts=3, msgtype="text")
    alert = huge_alert(3 * CONTENT_LIMIT)
    dingtalk.refuse_next(1, BUSY, after=1)  # the second part, once

    with pytest.raises(ProviderError) as caught:
        robot.send(alert, DeliveryContext(idempotency_key="delivery-1"))
    assert caught.value.retryable and caught.value.attempts == 2
    assert "part 2/3 failed, 1 sent before it; a retry starts at part 2" in str(caught.value)

    result = robot.send(alert, DeliveryContext(idempotency_key="delivery-1", attempt=2))
    assert [m.content[:6] for m in dingtalk.messages] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert result.parts == 3 and result.attempts == 2
    assert result.details == {"resumed_at_part": 2}
