"""The feishu-bot channel against the fake Feishu: signing, cards, text, mentions, the
body limit and error mapping."""

from __future__ import annotations

import json

import pytest
from notifier_feishu.messages import BODY_LIMIT, body_size, render_messages
from notifier_feishu.plugin import (
    FREQUENCY_LIMITED,
    IP_NOT_ALLOWED,
    KEYWORDS_NOT_FOUND,
    SIGN_FAILED,
    TOKEN_INVALID,
    TOO_MANY_REQUESTS,
)
from notifier_feishu.signing import signature
from notifier_feishu.testing import BOT_SECRET, BOT_TOKEN, bot_signature

from notifier.config import parse_channel
from notifier.errors import AuthError, ConfigError, ProviderError, RateLimited
from notifier.models import Alert, DeliveryContext
from notifier.testing.samples import huge_alert, resolved, sample_alert


def send(channel, alert=None, mentions=()):
    return channel.send(alert or sample_alert(), DeliveryContext(mentions=tuple(mentions)))


# -- signing -----------------------------------------------------------------------------


def test_a_signed_bot_puts_a_seconds_timestamp_and_signature_in_the_body(make_bot, feishu, clock):
    send(make_bot())
    (message,) = feishu.messages
    stamp = int(clock.time())
    assert message.body["timestamp"] == str(stamp)
    assert message.body["sign"] == bot_signature(BOT_SECRET, stamp)
    assert feishu.answers == [0]


def test_the_signature_keys_hmac_with_timestamp_and_secret_over_an_empty_message():
    # Feishu's documented construction: HmacSHA256 keyed by "<timestamp>\n<secret>", no data.
    import base64
    import hashlib
    import hmac

    key = b"1599360473\ndemo-secret"
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert signature("demo-secret", 1599360473) == expected


def test_every_request_is_signed_with_its_own_timestamp(make_bot, feishu, clock):
    bot = make_bot()
    send(bot)
    clock.advance(1800)
    send(bot)
    stamps = [int(m.body["timestamp"]) for m in feishu.messages]
    assert stamps[1] - stamps[0] == 1800
    assert feishu.answers == [0, 0]


def test_a_wrong_secret_is_a_permanent_auth_error_with_feishus_message(make_bot, feishu):
    with pytest.raises(AuthError) as info:
        send(make_bot(secret="not-the-bots-secret"))
    assert info.value.retryable is False
    assert info.value.code == SIGN_FAILED
    assert "sign match fail" in str(info.value)
    assert feishu.messages == []


def test_a_clock_more_than_an_hour_off_fails_the_signature(make_bot, feishu, clock):
    bot = make_bot()
    feishu.clock = type(clock)(start=clock.time() - 3601)
    with pytest.raises(AuthError, match="19021"):
        send(bot)


def test_an_unsigned_bot_sends_no_signature_fields(make_bot, feishu):
    feishu.bots[BOT_TOKEN] = None
    send(make_bot(secret=None))
    assert "sign" not in feishu.messages[0].body
    assert "timestamp" not in feishu.messages[0].body


@pytest.mark.parametrize(
    "url",
    ["not a url", "https://open.feishu.cn/", "https://open.feishu.cn/hook/abc?x=1", "ftp://h/a"],
)
def test_a_malformed_webhook_url_is_a_config_error_naming_the_key(host, url):
    with pytest.raises(ConfigError) as info:
        parse_channel("ops", {"kind": "feishu-bot", "url": url}, host)
    assert info.value.issues[0].path == "channels.ops.url"
    assert "open-apis/bot/v2/hook" in str(info.value)


# -- messages ----------------------------------------------------------------------------


def test_the_default_card_has_a_red_header_fields_and_link_buttons(make_bot, feishu):
    send(make_bot())
    card = feishu.messages[0].body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"]["content"] == "[FIRING][CRITICAL] 数据库主库磁盘使用率过高"
    text = card["elements"][0]["text"]["content"]
    assert "**service**: orders-db" in text and "**Summary**: 磁盘即将写满" in text
    buttons = card["elements"][1]["actions"]
    assert [b["url"] for b in buttons] == [
        "https://grafana.example/d/disk",
        "https://runbooks.example/disk",
    ]


def test_a_resolved_card_is_green_and_says_resolved(make_bot, feishu):
    send(make_bot(), resolved(sample_alert()))
    card = feishu.messages[0].body["card"]
    assert card["header"]["template"] == "green"
    assert card["header"]["title"]["content"].startswith("[RESOLVED]")


def test_text_messages_carry_the_plain_rendering_and_at_tags(make_bot, feishu):
    send(make_bot(msgtype="text"), mentions=["@all", "ou_7d8a6e6df7621556ce0d21922b676706"])
    text = feishu.messages[0].body["content"]["text"]
    assert text.startswith("[FIRING][CRITICAL] 数据库主库磁盘使用率过高\n")
    assert text.endswith(
        '<at user_id="all"></at> <at user_id="ou_7d8a6e6df7621556ce0d21922b676706"></at>'
    )


def test_card_mentions_are_a_separate_lark_md_element(make_bot, feishu):
    send(make_bot(), mentions=["@all"])
    elements = feishu.messages[0].body["card"]["elements"]
    assert elements[-1] == {"tag": "div", "text": {"tag": "lark_md", "content": "<at id=all></at>"}}


def test_alert_text_cannot_forge_a_mention_tag():
    alert = Alert(title="t", body="<at id=all></at> & <b>")
    (message,) = render_messages(alert)
    content = message["card"]["elements"][0]["text"]["content"]
    assert "<at" not in content and "&lt;at id=all&gt;&lt;/at&gt; &amp; &lt;b&gt;" in content


def test_a_huge_card_is_truncated_to_fit_the_body_limit_with_the_signature(make_bot, feishu):
    result = send(make_bot(), huge_alert(3 * BODY_LIMIT))
    (message,) = feishu.messages
    assert result.parts == 1
    assert BODY_LIMIT - 300 < len(message.raw.encode()) <= BODY_LIMIT
    assert message.text.rstrip().endswith("…[truncated]") or "…[truncated]" in message.text


def test_text_full_of_characters_json_escapes_still_fits():
    alert = Alert(title="quotes", body='"\\\n\t' * 20000)
    for msgtype in ("text", "interactive"):
        messages = render_messages(alert, msgtype=msgtype, overflow="split", max_parts=5)
        assert len(messages) == 5
        assert all(body_size(m) <= BODY_LIMIT - 96 for m in messages)
        assert all(json.loads(json.dumps(m)) == m for m in messages)


def test_split_sends_numbered_text_parts_each_within_the_limit(make_bot, feishu):
    result = send(make_bot(msgtype="text", overflow="split", max_parts=3), huge_alert(100_000))
    texts = [m.body["content"]["text"] for m in feishu.messages]
    assert result.parts == 3
    assert [t[:6] for t in texts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert all(len(m.raw.encode()) <= BODY_LIMIT for m in feishu.messages)


def test_every_part_after_the_first_waits_for_its_own_pacing_slot(make_bot, feishu):
    paced = []
    delivery = DeliveryContext(pace=lambda: paced.append(len(feishu.messages)) or 0.0)
    make_bot(overflow="split", max_parts=3).send(huge_alert(3 * BODY_LIMIT), delivery)
    assert paced == [1, 2]


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type", "retryable"),
    [
        (TOO_MANY_REQUESTS, RateLimited, True),
        (FREQUENCY_LIMITED, RateLimited, True),
        (TOKEN_INVALID, AuthError, False),
        (SIGN_FAILED, AuthError, False),
        (IP_NOT_ALLOWED, AuthError, False),
        (KEYWORDS_NOT_FOUND, ProviderError, False),
    ],
)
def test_feishu_codes_map_onto_the_error_tree(make_bot, feishu, code, error_type, retryable):
    feishu.fail_next(5, code=code)
    with pytest.raises(error_type) as info:
        send(make_bot())
    assert info.value.retryable is retryable
    assert info.value.code == code
    assert f"code {code}" in str(info.value)


def test_a_frequency_limit_suggests_a_minute_and_does_not_sleep(make_bot, feishu, clock):
    feishu.fail_next(5, code=FREQUENCY_LIMITED)
    with pytest.raises(RateLimited) as info:
        send(make_bot())
    assert info.value.retry_after == 60
    assert clock.sleeps == []


def test_the_sixth_message_in_a_second_is_frequency_limited(make_bot, feishu, clock):
    bot = make_bot()
    for _ in range(5):
        send(bot)
    with pytest.raises(RateLimited):
        send(bot)
    clock.advance(1)
    send(bot)
    assert len(feishu.messages) == 6


def test_an_unknown_hook_token_is_an_auth_error(make_bot, feishu):
    with pytest.raises(AuthError, match="access token invalid"):
        send(make_bot(url=feishu.webhook_url("no-such-hook")))


def test_the_channel_repr_hides_the_url(make_bot):
    bot = make_bot()
    assert repr(bot) == "FeishuBot('ops-feishu')"
    assert BOT_TOKEN not in repr(bot.client)


def test_a_retry_after_a_failed_second_part_sends_each_part_exactly_once_in_order(make_bot, feishu):
    bot = make_bot(msgtype="text", overflow="split", max_parts=3)
    alert = huge_alert(100_000)
    feishu.refuse_next(1, TOO_MANY_REQUESTS, after=1)  # the second part, once

    with pytest.raises(RateLimited) as caught:
        bot.send(alert, DeliveryContext(idempotency_key="delivery-1"))
    assert caught.value.retryable and caught.value.attempts == 2
    assert "part 2/3 failed, 1 sent before it; a retry starts at part 2" in str(caught.value)

    result = bot.send(alert, DeliveryContext(idempotency_key="delivery-1", attempt=2))
    texts = [m.body["content"]["text"] for m in feishu.messages]
    assert [t[:6] for t in texts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert result.parts == 3 and result.attempts == 2
    assert result.details == {"resumed_at_part": 2}
