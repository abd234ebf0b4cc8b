"""The fake Feishu answers raw requests the way Feishu's custom bots do."""

from __future__ import annotations

import pytest
import requests
from notifier_feishu.testing import BOT_SECRET, BOT_TOKEN, FakeFeishu, bot_signature

from notifier.clock import FakeClock

TEXT = {"msg_type": "text", "content": {"text": "磁盘满了"}}


@pytest.fixture
def fake():
    with FakeFeishu({BOT_TOKEN: BOT_SECRET, "plain": None}, clock=FakeClock()) as server:
        yield server


def post(fake, token, body):
    return requests.post(fake.webhook_url(token), json=body, timeout=5).json()


def signed(fake, body=TEXT, offset=0, secret=BOT_SECRET):
    stamp = int(fake.clock.time()) + offset
    return {**body, "timestamp": str(stamp), "sign": bot_signature(secret, stamp)}


def test_an_unsigned_bot_accepts_a_text_message_with_feishus_success_answer(fake):
    assert post(fake, "plain", TEXT) == {
        "StatusCode": 0,
        "StatusMessage": "success",
        "code": 0,
        "data": {},
        "msg": "success",
    }
    assert fake.messages[0].text == "磁盘满了"


def test_a_signing_bot_checks_the_signature_and_its_freshness(fake):
    assert post(fake, BOT_TOKEN, signed(fake))["code"] == 0
    assert post(fake, BOT_TOKEN, signed(fake, secret="wrong"))["code"] == 19021
    assert post(fake, BOT_TOKEN, signed(fake, offset=-3601))["code"] == 19021
    assert post(fake, BOT_TOKEN, TEXT)["msg"].startswith("sign match fail")
    assert len(fake.messages) == 1


def test_an_unknown_token_and_malformed_messages_are_refused(fake):
    assert post(fake, "nope", TEXT)["code"] == 19001
    assert post(fake, "plain", {"content": {"text": "x"}})["code"] == 19002
    assert post(fake, "plain", {"msg_type": "interactive", "card": {}})["code"] == 19002
    too_big = {"msg_type": "text", "content": {"text": "满" * 7000}}  # over 20 KB
    assert post(fake, "plain", too_big)["msg"] == "request body exceeds 20480 bytes"
    assert fake.messages == []


def test_five_a_second_and_a_hundred_a_minute(fake):
    answers = [post(fake, "plain", TEXT)["code"] for _ in range(6)]
    assert answers == [0] * 5 + [11232]
    for _ in range(19):
        fake.clock.advance(1)
        assert [post(fake, "plain", TEXT)["code"] for _ in range(5)] == [0] * 5
    fake.clock.advance(1)
    assert post(fake, "plain", TEXT)["code"] == 11232  # 100 in the last minute
    fake.clock.advance(40)  # the first second's five leave the window
    assert [post(fake, "plain", TEXT)["code"] for _ in range(6)] == [0] * 5 + [11232]


def test_scripted_codes_and_statuses(fake):
    fake.fail_next(1, code=9499)
    assert post(fake, "plain", TEXT) == {"code": 9499, "data": {}, "msg": "too many request"}
    fake.fail_next(1, code=None, status=502)
    assert requests.post(fake.webhook_url("plain"), json=TEXT, timeout=5).status_code == 502
    assert post(fake, "plain", TEXT)["code"] == 0


def test_a_scripted_status_carries_the_given_retry_after_and_body(fake):
    fake.fail_next(1, code=None, status=503, retry_after=7, body=b"upstream busy")
    answer = requests.post(fake.webhook_url("plain"), json=TEXT, timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"], answer.content) == (
        503,
        "7",
        b"upstream busy",
    )
