"""WeCom's error codes: permanent ones fail clearly, transient ones are retryable, token
errors refresh once; no secret reaches a message, a log line or a request event."""

from __future__ import annotations

import pytest
from notifier_wework import plugin
from notifier_wework.testing import Chat
from wework_support import GATEWAY_SECRET, make_alert

from notifier.errors import AuthError, NotifierError, ProviderError, RateLimited, TransportError
from notifier.kinds import BuildContext
from notifier.models import DeliveryContext

ROBOT_KEY = "fake-robot-key-0001"


def send(channel, **delivery):
    return plugin.notifier_send(
        channel=channel, alert=make_alert(), delivery=DeliveryContext(**delivery)
    )


def inject(code):
    return lambda server: server.fail_next(1, "errcode", errcode=code)


AGENT = 1000002  # the fake's application
CHAT = {"chat_id": "ops1"}
APP = {"agent_id": AGENT, "to_user": ["zhangsan"]}

# (kind, options, setup(server), code, error class, advice the message must carry)
PERMANENT = [
    ("wework", {**CHAT, "secret": "wrong-secret-77a1"}, None, 40001, AuthError, "the secret is"),
    ("wework", {**CHAT, "corp_id": "ww-wrong"}, None, 40013, AuthError, "corp_id is wrong"),
    ("wework", {"chat_id": "nochat"}, None, 86001, ProviderError, "the chat id is unknown"),
    ("wework", CHAT, inject(40058), 40058, ProviderError, "WeCom rejected a parameter"),
    ("wework", CHAT, inject(40008), 40008, ProviderError, "the message type is not"),
    ("wework", CHAT, inject(44004), 44004, ProviderError, "the message content is empty"),
    ("wework", CHAT, inject(48002), 48002, AuthError, "this application may not call"),
    ("wework", APP, inject(60011), 60011, AuthError, "the application has no privilege"),
    ("wework", {**APP, "to_user": ["ghost"]}, None, 81013, ProviderError, "none of to_user"),
    ("wework", {**APP, "agent_id": 42}, None, 40056, ProviderError, "agent_id is not"),
    ("wework-robot", {"key": "wrong-robot-key-51"}, None, 93000, AuthError, "the webhook key"),
    ("wework-robot", {}, lambda s: s.disable_robot(ROBOT_KEY), 93004, AuthError, "the robot was"),
    ("wework-gateway", {"app_secret": "wrong-gw-secret-3"}, None, 1640001, AuthError, "the gate"),
    ("wework-gateway", {"chat_id": "nochat"}, None, 86001, ProviderError, "the chat id is"),
]


@pytest.fixture
def events():
    return []


@pytest.fixture
def observed(wework_clock, events):
    return BuildContext(clock=wework_clock, pool_size=4, observe=events.append)


def secrets_of(server, options):
    values = [server.secret, ROBOT_KEY, GATEWAY_SECRET, *server.issued_tokens]
    values += [v for k, v in options.items() if "secret" in k or k == "key"]
    return values


@pytest.mark.parametrize(
    ("kind", "options", "setup", "code", "error_class", "advice"),
    PERMANENT,
    ids=[f"{case[0]}-{case[3]}" for case in PERMANENT],
)
def test_a_permanent_error_names_the_channel_the_code_and_what_to_do_and_leaks_nothing(
    build,
    wework_server,
    observed,
    events,
    debug_logs,
    kind,
    options,
    setup,
    code,
    error_class,
    advice,
):
    wework_server.chats["ops1"] = Chat("ops1", "oncall", "zhangsan", ["zhangsan", "lisi"])
    channel = build(kind, context=observed, **options)
    if setup is not None:
        setup(wework_server)

    with pytest.raises(error_class) as caught:
        send(channel)

    error = caught.value
    assert error.retryable is False
    assert error.code == code
    assert str(error).startswith("channel 'ops', ")
    assert f"code {code}: {advice}" in str(error)
    outputs = [str(error), repr(error), debug_logs.text, *map(repr, events)]
    outputs += [r.getMessage() for r in debug_logs.records]
    for secret in secrets_of(wework_server, options):
        assert not any(secret in out for out in outputs), f"{secret!r} leaked"
    assert any("code " + str(code) in repr(e) for e in events)


@pytest.mark.parametrize(
    ("fault", "kwargs", "error_class"),
    [
        ("busy", {}, ProviderError),
        ("errcode", {"errcode": 45033}, ProviderError),
        ("rate", {}, RateLimited),
        ("5xx", {"status": 502}, ProviderError),
        ("drop", {}, TransportError),
    ],
)
def test_transient_failures_are_retryable(build, wework_server, fault, kwargs, error_class):
    channel = build("wework-robot")
    wework_server.fail_next(1, fault, path="webhook/send", **kwargs)
    with pytest.raises(error_class) as caught:
        send(channel)
    assert caught.value.retryable
    assert "channel 'ops', webhook/send" in str(caught.value)


@pytest.mark.parametrize("stale", ["expire_tokens", "forget_tokens"])
def test_an_expired_or_unknown_token_is_refreshed_once_and_the_send_retried(
    build, wework_server, stale
):
    channel = build("wework", agent_id=wework_server.agent_id, to_user=["zhangsan"])
    send(channel)
    getattr(wework_server, stale)()  # 42001 or 40014 on the next call

    result = send(channel)

    assert result.attempts == 2 and wework_server.token_requests == 2
    assert len(wework_server.app_messages()) == 2


def test_a_token_rejected_twice_in_a_row_is_an_error_not_a_loop(build, wework_server):
    channel = build("wework", agent_id=wework_server.agent_id, to_user=["zhangsan"])
    wework_server.fail_next(2, "errcode", errcode=42001, path="message/send")
    with pytest.raises(NotifierError, match="errcode 42001") as caught:
        send(channel)
    assert caught.value.attempts == 2 and wework_server.token_requests == 2
