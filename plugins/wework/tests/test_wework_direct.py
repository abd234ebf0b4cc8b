"""The ``wework`` kind: app group chats and application messages with an access token."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from notifier_wework import plugin
from wework_support import make_alert

from notifier.errors import AuthError, ChannelError, ProviderError
from notifier.models import DeliveryContext, GroupSpec, GroupUpdate


def send(channel, alert=None, **delivery):
    return plugin.notifier_send(
        channel=channel, alert=alert or make_alert(), delivery=DeliveryContext(**delivery)
    )


ONCALL = GroupSpec("oncall", owner="zhangsan", members=["lisi", "wangwu"])


# -- app group chats -----------------------------------------------------------------------


def test_a_group_created_through_the_channel_gets_its_chat_id_and_then_its_alerts(
    build, wework_server
):
    channel = build("wework", chat_id="ops1")
    info = plugin.notifier_create_group(channel=channel, group=ONCALL)
    assert info.chat_id == "ops1"  # the chat this channel is configured to send to
    assert info.members == ("zhangsan", "lisi", "wangwu") and info.owner == "zhangsan"

    result = send(channel, make_alert(severity="critical", body="/data 98%"))

    (sent,) = wework_server.chat_messages("ops1")
    assert sent.msgtype == "text"
    assert sent.content.startswith("[FIRING][CRITICAL] 磁盘将满\n/data 98%")
    assert result.attempts == 1 and result.parts == 1 and result.message_id is None
    assert result.details == {"chat_id": "ops1"}
    assert wework_server.token_requests == 1


def test_a_group_spec_chat_id_wins_and_without_any_wecom_generates_one(build, wework_server):
    chat_channel = build("wework", chat_id="ops1")
    explicit = plugin.notifier_create_group(
        channel=chat_channel, group=GroupSpec("db", members=["zhangsan", "lisi"], chat_id="db1")
    )
    assert explicit.chat_id == "db1" and "ops1" not in wework_server.chats
    assert explicit.owner == "zhangsan"  # named, or WeCom would pick one at random
    assert wework_server.calls_to("appchat/create")[0].body["owner"] == "zhangsan"

    app_channel = build("wework", name="app", agent_id=wework_server.agent_id, to_user=["lisi"])
    generated = plugin.notifier_create_group(channel=app_channel, group=ONCALL)
    assert generated.chat_id in wework_server.chats and generated.chat_id != "db1"
    assert wework_server.chats[generated.chat_id].name == "oncall"


def test_get_and_update_group_show_the_providers_view(build, wework_server):
    channel = build("wework", chat_id="ops1")
    plugin.notifier_create_group(channel=channel, group=ONCALL)
    update = GroupUpdate(name="oncall-db", add_members=["zhaoliu"], remove_members=["lisi"])

    info = plugin.notifier_update_group(channel=channel, chat_id="ops1", update=update)

    assert info.name == "oncall-db" and info.members == ("zhangsan", "wangwu", "zhaoliu")
    assert plugin.notifier_get_group(channel=channel, chat_id="ops1") == info
    assert wework_server.calls_to("appchat/update")[0].body == {
        "chatid": "ops1",
        "name": "oncall-db",
        "add_user_list": ["zhaoliu"],
        "del_user_list": ["lisi"],
    }


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (GroupSpec("solo", owner="zhangsan"), "at least 2 members, owner included; got 1"),
        (GroupSpec("x", members=["zhangsan", "lisi"], chat_id="no-dashes"), "1 to 32 letters"),
    ],
)
def test_a_group_wecom_would_refuse_fails_before_any_request(build, wework_server, group, expected):
    channel = build("wework", chat_id="ops1")
    with pytest.raises(ChannelError, match=expected) as caught:
        plugin.notifier_create_group(channel=channel, group=group)
    assert caught.value.retryable is False and caught.value.attempts == 0
    assert wework_server.calls_to("appchat/create") == []


def test_creating_a_chat_id_that_exists_is_a_permanent_error_saying_so(build):
    channel = build("wework", chat_id="ops1")
    plugin.notifier_create_group(channel=channel, group=ONCALL)
    with pytest.raises(ProviderError) as caught:
        plugin.notifier_create_group(channel=channel, group=ONCALL)
    assert caught.value.code == 86215 and not caught.value.retryable
    assert "channel 'ops', appchat/create: errcode 86215: a chat with this id already exists" in (
        str(caught.value)
    )


def test_route_mentions_are_reported_as_not_sent_to_a_group_chat(build, wework_server):
    channel = build("wework", chat_id="ops1")
    plugin.notifier_create_group(channel=channel, group=ONCALL)
    result = send(channel, mentions=("@all",))
    assert result.details["mentions_not_sent"] == ["@all"]
    assert len(wework_server.chat_messages("ops1")) == 1


# -- application messages ------------------------------------------------------------------


def test_an_application_message_reports_recipients_that_did_not_get_it(build, wework_server):
    channel = build(
        "wework",
        agent_id=wework_server.agent_id,
        to_user=["zhangsan", "ghost"],
        to_party=["1", "99"],
        to_tag=["7"],
        msgtype="markdown",
    )
    result = send(channel)

    (sent,) = wework_server.app_messages()
    assert result.message_id == sent.msgid
    assert result.details == {"invaliduser": ["ghost"], "invalidparty": ["99"], "invalidtag": ["7"]}
    assert sent.recipients == {"users": ("zhangsan",), "parties": ("1",), "tags": ()}
    assert sent.msgtype == "markdown" and '<font color="warning">' in sent.content
    assert sent.body["agentid"] == wework_server.agent_id
    assert "enable_duplicate_check" not in sent.body


def test_route_mentions_become_recipients_of_an_application_message(build, wework_server):
    channel = build("wework", agent_id=wework_server.agent_id, to_user=["zhangsan"])
    send(channel, mentions=("lisi", "zhangsan"))
    (sent,) = wework_server.app_messages()
    assert sent.body["touser"] == "zhangsan|lisi"


def test_an_application_message_to_nobody_valid_fails_permanently(build, wework_server):
    channel = build("wework", agent_id=wework_server.agent_id, to_user=["ghost"])
    with pytest.raises(ProviderError, match="errcode 81013: none of to_user") as caught:
        send(channel)
    assert not caught.value.retryable


def test_with_the_duplicate_check_a_busy_answer_is_retried_within_the_call(build, wework_server):
    channel = build(
        "wework",
        agent_id=wework_server.agent_id,
        to_user=["zhangsan"],
        enable_duplicate_check=True,
        duplicate_check_interval=600,
    )
    wework_server.fail_next(1, "busy", path="message/send")

    result = send(channel, idempotency_key="k1")

    assert result.attempts == 2 and channel.deduplicates
    (sent,) = wework_server.app_messages()
    assert sent.body["enable_duplicate_check"] == 1
    assert sent.body["duplicate_check_interval"] == 600
    send(channel, idempotency_key="k1")  # a later retry of the same delivery: dropped
    assert len(wework_server.app_messages()) == 1 and wework_server.duplicates_dropped == 1


def test_without_the_duplicate_check_a_busy_answer_is_left_to_a_later_retry(build, wework_server):
    channel = build("wework", agent_id=wework_server.agent_id, to_user=["zhangsan"])
    wework_server.fail_next(1, "busy", path="message/send")
    with pytest.raises(ProviderError, match="errcode -1: WeCom is busy") as caught:
        send(channel)
    assert caught.value.retryable and caught.value.attempts == 1
    assert not channel.deduplicates and wework_server.app_messages() == []


# -- tokens --------------------------------------------------------------------------------


def test_a_token_expiring_in_the_middle_of_32_concurrent_sends_is_refreshed_once(
    build, wework_server
):
    channel = build("wework", agent_id=wework_server.agent_id, to_user=["zhangsan"])
    send(channel, make_alert("warm-up"))  # the first token is cached
    wework_server.expire_tokens_after(8)  # answered 8 of the burst, then it goes stale
    start = threading.Barrier(32)

    def one(i):
        start.wait()
        return send(channel, make_alert(f"alert {i}"))

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(32)))

    assert wework_server.token_requests == 2  # the first token and one refresh
    expired = [c for c in wework_server.calls_to("message/send") if c.errcode == 42001]
    assert expired, "the token must have expired in the middle of the burst"
    assert sum(r.attempts for r in results) == 32 + len(expired)
    titles = sorted(s.content.split("\n")[0] for s in wework_server.app_messages()[1:])
    assert titles == sorted(f"[FIRING][WARNING] alert {i}" for i in range(32))


def test_channels_with_the_same_credential_share_one_token(build, wework_server):
    first = build("wework", chat_id="ops1")
    plugin.notifier_create_group(channel=first, group=ONCALL)
    second = build("wework", name="app", agent_id=wework_server.agent_id, to_user=["lisi"])
    for _ in range(3):
        send(first)
        send(second)
    assert wework_server.token_requests == 1
    first.close()  # the shared token outlives the channel that fetched it
    wework_server.expire_tokens()
    assert send(second).attempts == 2
    assert wework_server.token_requests == 2


def test_a_wrong_secret_is_a_permanent_auth_error_without_the_secret(build, wework_server):
    channel = build("wework", chat_id="ops1", secret="not-the-secret-9f8e7d")
    with pytest.raises(AuthError) as caught:
        send(channel)
    text = str(caught.value)
    assert "errcode 40001: the secret is wrong" in text and "channel 'ops'" in text
    assert "not-the-secret-9f8e7d" not in text and not caught.value.retryable


def test_a_channel_without_a_target_creates_groups_but_refuses_to_send(build, wework_server):
    channel = build("wework", name="admin")
    info = plugin.notifier_create_group(channel=channel, group=ONCALL)
    assert info.chat_id in wework_server.chats
    with pytest.raises(ChannelError, match="has neither chat_id nor agent_id") as caught:
        send(channel)
    assert not caught.value.retryable and caught.value.attempts == 0
    assert wework_server.calls_to("appchat/send") == []
