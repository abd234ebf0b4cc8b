"""WeCom's byte limits: multi-byte content is cut on character boundaries, never over."""

from __future__ import annotations

import re

import pytest
from notifier_wework import plugin
from notifier_wework.messages import MARKDOWN_LIMIT, TEXT_LIMIT, contents, render
from wework_support import make_alert

from notifier.errors import ProviderError
from notifier.models import DeliveryContext, GroupSpec
from notifier.render import TRUNCATION_MARKER, byte_len

# 4 CJK characters (3 bytes each) and one emoji (4 bytes): 16 bytes a unit.
UNIT = "磁盘满了😀"
PART = re.compile(r"\((\d+)/(\d+)\) ")


def send(channel, alert, **delivery):
    return plugin.notifier_send(channel=channel, alert=alert, delivery=DeliveryContext(**delivery))


def unprefixed(parts):
    numbers = [PART.match(p) for p in parts]
    assert all(numbers), parts
    assert [(int(m[1]), int(m[2])) for m in numbers] == [
        (i, len(parts)) for i in range(1, len(parts) + 1)
    ]
    return [p[m.end() :] for p, m in zip(parts, numbers, strict=True)]


@pytest.fixture
def chat(build):
    channel = build("wework", chat_id="ops1", overflow="truncate")
    plugin.notifier_create_group(
        channel=channel, group=GroupSpec("oncall", members=["zhangsan", "lisi"])
    )
    return "ops1"


def test_text_over_2048_bytes_is_cut_at_the_last_whole_character_with_a_marker(
    build, wework_server, chat
):
    channel = build("wework", chat_id=chat)
    alert = make_alert(body=UNIT * 300)  # about 4800 bytes
    full = render(alert, "text")

    result = send(channel, alert)

    (sent,) = wework_server.chat_messages(chat)  # the fake enforces the byte limit
    assert result.parts == 1
    assert byte_len(sent.content) <= TEXT_LIMIT
    kept = sent.content.removesuffix(TRUNCATION_MARKER)
    assert kept != sent.content and full.startswith(kept)
    # Nothing more fitted: the next character would have crossed the limit.
    next_char = full[len(kept)]
    assert byte_len(kept) + byte_len(next_char) + byte_len(TRUNCATION_MARKER) > TEXT_LIMIT


def test_markdown_split_into_numbered_parts_each_within_4096_bytes(build, wework_server, chat):
    channel = build("wework", chat_id=chat, msgtype="markdown", overflow="split")
    alert = make_alert(body=(UNIT * 20 + "\n") * 40)  # about 13 kB over 40 lines
    full = render(alert, "markdown")

    result = send(channel, alert)

    sent = [s.content for s in wework_server.chat_messages(chat)]
    assert result.parts == len(sent) == 4
    assert all(byte_len(part) <= MARKDOWN_LIMIT for part in sent)
    assert "".join(unprefixed(sent)) == full  # nothing lost, nothing cut inside a character


def test_one_unbroken_line_of_emoji_splits_between_characters(build, wework_server, chat):
    channel = build("wework", chat_id=chat, overflow="split")
    alert = make_alert(body="😀" * 1500)  # 6000 bytes, no line or space to break at

    send(channel, alert)

    sent = [s.content for s in wework_server.chat_messages(chat)]
    assert len(sent) == 3 and all(byte_len(p) <= TEXT_LIMIT for p in sent)
    assert "".join(unprefixed(sent)) == render(alert, "text")


def test_robot_text_split_mentions_only_on_the_first_part(build, wework_server):
    channel = build("wework-robot", overflow="split", mentioned_list=["zhangsan"])
    send(channel, make_alert(body=UNIT * 300), mentions=("@all",))

    first, *rest = wework_server.robot_messages()
    assert first.body["text"]["mentioned_list"] == ["zhangsan", "@all"]
    assert rest and all("mentioned_list" not in s.body["text"] for s in rest)
    assert all(byte_len(s.content) <= TEXT_LIMIT for s in [first, *rest])


def test_markdown_mentions_are_counted_in_the_limit_and_survive_truncation(build, wework_server):
    channel = build("wework-robot", msgtype="markdown")
    send(channel, make_alert(body=UNIT * 600), mentions=("zhangsan", "lisi"))

    (sent,) = wework_server.robot_messages()
    assert byte_len(sent.content) <= MARKDOWN_LIMIT
    assert sent.content.endswith(TRUNCATION_MARKER + "\n<@zhangsan> <@lisi>")


def test_a_retry_after_a_failed_part_sends_only_the_parts_still_missing(build, wework_server, chat):
    channel = build("wework", chat_id=chat, overflow="split")
    alert = make_alert(body=UNIT * 300)  # three text parts
    wework_server.fail_next(1, "busy", path="appchat/send", after=1)

    with pytest.raises(ProviderError) as caught:
        send(channel, alert, idempotency_key="delivery-1")
    assert "part 2/3 failed, 1 sent before it; a retry starts at part 2" in str(caught.value)
    assert caught.value.retryable and caught.value.attempts == 2

    result = send(channel, alert, idempotency_key="delivery-1")

    sent = [s.content for s in wework_server.chat_messages(chat)]
    assert [PART.match(p)[1] for p in sent] == ["1", "2", "3"]  # each part exactly once
    assert result.details["resumed_at_part"] == 2 and result.parts == 3
    assert result.attempts == 2


def test_without_an_idempotency_key_a_retry_sends_every_part_again(build, wework_server, chat):
    channel = build("wework", chat_id=chat, overflow="split")
    alert = make_alert(body=UNIT * 300)
    wework_server.fail_next(1, "busy", path="appchat/send", after=1)
    with pytest.raises(ProviderError, match="part 2/3 failed, 1 sent before it]"):
        send(channel, alert)
    result = send(channel, alert)
    assert "resumed_at_part" not in result.details
    assert len(wework_server.chat_messages(chat)) == 4


@pytest.mark.parametrize("msgtype", ["text", "markdown"])
@pytest.mark.parametrize("overflow", ["truncate", "split"])
@pytest.mark.parametrize("size", [1, 700, 1366, 5000])
def test_contents_never_exceed_the_limit_whatever_the_length(msgtype, overflow, size):
    text = ("告警🔥" * size)[:size]
    for suffix in ("", "<@zhangsan>"):
        parts = contents(text, msgtype, overflow, suffix=suffix)
        limit = {"text": TEXT_LIMIT, "markdown": MARKDOWN_LIMIT}[msgtype]
        assert all(0 < byte_len(p) <= limit for p in parts)
        assert parts[0].endswith(suffix)
