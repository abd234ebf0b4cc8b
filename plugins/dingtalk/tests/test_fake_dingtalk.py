"""The fake DingTalk answers raw requests the way DingTalk does."""

from __future__ import annotations

import pytest
import requests
from notifier_dingtalk.testing import ROBOT_SECRET, ROBOT_TOKEN, FakeDingTalk, robot_signature

from notifier.clock import FakeClock


@pytest.fixture
def fake():
    clock = FakeClock()
    with FakeDingTalk({ROBOT_TOKEN: ROBOT_SECRET, "plain-token": None}, clock=clock) as server:
        yield server


def post(fake, body=None, **query):
    body = body if body is not None else {"msgtype": "text", "text": {"content": "磁盘满了"}}
    return requests.post(fake.api_root + "robot/send", params=query, json=body, timeout=5).json()


def signed(fake, offset_ms=0, secret=ROBOT_SECRET):
    stamp = int(fake.clock.time() * 1000) + offset_ms
    return {"access_token": ROBOT_TOKEN, "timestamp": stamp, "sign": robot_signature(secret, stamp)}


def test_an_unsigned_robot_accepts_its_token_and_records_the_message(fake):
    assert post(fake, access_token="plain-token") == {"errcode": 0, "errmsg": "ok"}
    assert fake.messages[0].content == "磁盘满了"


def test_a_missing_or_unknown_token_is_refused(fake):
    assert post(fake)["errcode"] == 400101
    assert post(fake, access_token="nope")["errcode"] == 300001


def test_a_signing_robot_checks_the_signature_and_its_freshness(fake):
    assert post(fake, **signed(fake))["errcode"] == 0
    assert post(fake, **signed(fake, secret="SECwrong")) == {
        "errcode": 310000,
        "errmsg": "sign not match",
    }
    assert post(fake, **signed(fake, offset_ms=-3_600_001))["errmsg"] == "invalid timestamp"
    assert post(fake, access_token=ROBOT_TOKEN)["errmsg"] == "invalid timestamp"
    assert len(fake.messages) == 1


def test_content_over_the_limit_and_malformed_messages_are_refused(fake):
    huge = {"msgtype": "text", "text": {"content": "满" * 6667}}  # 20001 bytes
    assert post(fake, huge, access_token="plain-token")["errcode"] == 40035
    assert post(fake, {"msgtype": "video"}, access_token="plain-token")["errcode"] == 40035
    bad_at = {"msgtype": "text", "text": {"content": "x"}, "at": {"atMobiles": "138"}}
    assert post(fake, bad_at, access_token="plain-token")["errcode"] == 40035
    no_title = {"msgtype": "markdown", "markdown": {"text": "x"}}
    assert post(fake, no_title, access_token="plain-token")["errcode"] == 40035
    assert fake.messages == []


def test_twenty_messages_a_minute_then_ten_minutes_of_send_too_fast(fake):
    answers = [post(fake, access_token="plain-token")["errcode"] for _ in range(21)]
    assert answers == [0] * 20 + [130101]
    fake.clock.advance(60)
    assert post(fake, access_token="plain-token")["errcode"] == 130101
    fake.clock.advance(600)
    assert post(fake, access_token="plain-token")["errcode"] == 0


def test_scripted_faults_answer_before_any_check(fake):
    fake.fail_next(2, errcode=-1)
    assert [post(fake)["errcode"] for _ in range(3)] == [-1, -1, 400101]
    fake.remove_robot("plain-token")
    assert post(fake, access_token="plain-token")["errcode"] == 300001


def test_a_scripted_status_carries_the_given_retry_after_and_body(fake):
    fake.fail_next(1, errcode=None, status=502, retry_after=3, body=b"bad gateway")
    body = {"msgtype": "text", "text": {"content": "磁盘满了"}}
    answer = requests.post(
        fake.api_root + "robot/send", params={"access_token": "plain-token"}, json=body, timeout=5
    )
    assert (answer.status_code, answer.headers["Retry-After"], answer.content) == (
        502,
        "3",
        b"bad gateway",
    )
