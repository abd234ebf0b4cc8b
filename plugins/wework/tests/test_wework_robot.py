"""The ``wework-robot`` kind: a group robot's webhook, its mentions, markdown and news."""

from __future__ import annotations

import pytest
from notifier_wework import plugin
from notifier_wework.kinds import KINDS
from wework_support import make_alert

from notifier.errors import RateLimited
from notifier.kinds import RateLimit
from notifier.models import DeliveryContext, GroupSpec, Link, Status


def send(channel, alert=None, **delivery):
    return plugin.notifier_send(
        channel=channel, alert=alert or make_alert(), delivery=DeliveryContext(**delivery)
    )


def test_text_mentions_join_configured_users_route_mentions_and_mobiles(build, wework_server):
    channel = build(
        "wework-robot", mentioned_list=["zhangsan"], mentioned_mobile_list=["13800000001"]
    )
    result = send(channel, mentions=("@all", "lisi", "13800000002", "zhangsan"))

    (sent,) = wework_server.robot_messages("fake-robot-key-0001")
    assert sent.body["text"]["mentioned_list"] == ["zhangsan", "@all", "lisi"]
    assert sent.body["text"]["mentioned_mobile_list"] == ["13800000001", "13800000002"]
    assert sent.content.startswith("[FIRING][WARNING] 磁盘将满")
    assert result.details["mentioned"] == ["zhangsan", "@all", "lisi", "13800000001", "13800000002"]


def test_without_mentions_a_text_message_carries_no_mention_fields(build, wework_server):
    send(build("wework-robot"))
    (sent,) = wework_server.robot_messages()
    assert set(sent.body["text"]) == {"content"}


def test_markdown_mentions_users_in_the_content_and_reports_what_it_cannot(build, wework_server):
    channel = build("wework-robot", msgtype="markdown", mentioned_mobile_list=["13800000001"])
    result = send(channel, mentions=("zhangsan", "@all"))

    (sent,) = wework_server.robot_messages()
    assert sent.msgtype == "markdown"
    assert sent.content.startswith('### <font color="warning">[FIRING][WARNING]</font> 磁盘将满')
    assert sent.content.endswith("\n<@zhangsan>")
    assert result.details["mentions_not_sent"] == ["@all", "13800000001"]


def test_a_resolved_alert_looks_different_from_a_firing_one(build, wework_server):
    channel = build("wework-robot", msgtype="markdown")
    send(channel, make_alert(severity="critical"))
    send(channel, make_alert(severity="critical", status=Status.RESOLVED))
    firing, resolved = (s.content for s in wework_server.robot_messages())
    assert '<font color="warning">[FIRING][CRITICAL]</font>' in firing
    assert '<font color="info">[RESOLVED]</font>' in resolved


def test_news_sends_one_article_linking_the_alert(build, wework_server):
    channel = build("wework-robot", msgtype="news")
    alert = make_alert(
        body="磁盘使用率 98%" * 60,
        links=[Link("https://grafana.example.com/d/disk", "Dashboard")],
        annotations={"image_url": "https://grafana.example.com/render/disk.png"},
    )
    result = send(channel, alert)

    (sent,) = wework_server.robot_messages()
    (article,) = sent.body["news"]["articles"]
    assert article["title"] == "[FIRING][WARNING] 磁盘将满"
    assert article["url"] == "https://grafana.example.com/d/disk"
    assert article["picurl"].endswith("disk.png")
    assert len(article["description"].encode()) <= 512
    assert article["description"].endswith("…[truncated]")
    assert result.details == {}


def test_news_for_an_alert_without_a_link_is_sent_as_markdown(build, wework_server):
    result = send(build("wework-robot", msgtype="news"))
    (sent,) = wework_server.robot_messages()
    assert sent.msgtype == "markdown" and result.details["sent_as"] == "markdown"


def test_a_full_minute_window_is_rate_limited_with_the_window_as_the_wait(build, wework_server):
    channel = build("wework-robot")
    wework_server.fail_next(1, "rate", path="webhook/send")
    with pytest.raises(RateLimited) as caught:
        send(channel)
    assert caught.value.retry_after == 60.0 and caught.value.retryable
    assert "errcode 45009" in str(caught.value)


def test_the_robot_kind_declares_the_providers_rate_and_cannot_manage_groups(build):
    robot = {k.name: k for k in KINDS}["wework-robot"]
    assert robot.rate_limit == RateLimit(20, 60.0)
    assert not robot.can_create_group and not robot.deduplicates
    channel = build("wework-robot")
    group = GroupSpec("x", members=["a", "b"])
    assert plugin.notifier_create_group(channel=channel, group=group) is None
    assert plugin.notifier_get_group(channel=channel, chat_id="x") is None


def test_hooks_leave_channels_of_other_plugins_alone():
    other = object()
    assert (
        plugin.notifier_send(channel=other, alert=make_alert(), delivery=DeliveryContext()) is None
    )
    assert plugin.notifier_create_group(channel=other, group=GroupSpec("x")) is None
