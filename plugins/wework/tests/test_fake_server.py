"""The fake WeCom server answers like the provider described in docs/channels/wework.md.

These tests talk to it with plain ``requests`` calls, through the ``wework_server`` and
``wework_clock`` fixtures its pytest plugin provides.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests
from notifier_wework.testing import FakeWeCom

pytest_plugins = ["pytester"]


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def server(wework_server):
    return wework_server


def get_token(server, http) -> str:
    answer = http.get(
        server.api_root + "gettoken",
        params={"corpid": server.corp_id, "corpsecret": server.secret},
    ).json()
    assert answer["errcode"] == 0, answer
    return answer["access_token"]


def call(server, http, endpoint, body=None, *, token=None, method="POST", **params):
    if token is not None:
        params["access_token"] = token
    response = http.request(method, server.api_root + endpoint, params=params, json=body)
    assert response.status_code == 200  # always, even for envelope errors
    return response.json()


def text(content, **extra):
    return {"msgtype": "text", "text": {"content": content, **extra}}


def markdown(content):
    return {"msgtype": "markdown", "markdown": {"content": content}}


@pytest.fixture
def token(server, http):
    return get_token(server, http)


@pytest.fixture
def chat(server, http, token):
    answer = call(
        server,
        http,
        "appchat/create",
        {"name": "oncall", "owner": "zhangsan", "userlist": ["zhangsan", "lisi"], "chatid": "ops1"},
        token=token,
    )
    assert answer == {"errcode": 0, "errmsg": "ok", "chatid": "ops1"}
    return "ops1"


# -- tokens ----------------------------------------------------------------------------


def test_gettoken_issues_a_token_with_its_lifetime_and_counts_requests(server, http):
    answer = http.get(
        server.api_root + "gettoken",
        params={"corpid": server.corp_id, "corpsecret": server.secret},
    ).json()
    assert answer["errcode"] == 0 and answer["expires_in"] == 7200
    assert len(answer["access_token"]) > 20
    assert server.token_requests == 1
    assert server.valid_tokens == [answer["access_token"]]


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"corpid": "wrong", "corpsecret": "fake-app-secret-0001"}, 40013),
        ({"corpid": "ww0fakecorp000001", "corpsecret": "wrong"}, 40001),
        ({"corpsecret": "fake-app-secret-0001"}, 41002),
        ({"corpid": "ww0fakecorp000001"}, 41004),
    ],
)
def test_gettoken_rejects_bad_credentials_with_http_200(server, http, params, errcode):
    response = http.get(server.api_root + "gettoken", params=params)
    assert response.status_code == 200
    answer = response.json()
    assert answer["errcode"] == errcode
    assert "access_token" not in answer
    assert f"e={errcode}" in answer["errmsg"]


def test_tokens_expire_by_the_injected_clock(server, http, token, chat, wework_clock):
    wework_clock.advance(7199)
    assert (
        call(server, http, "appchat/send", {"chatid": chat, **text("hi")}, token=token)["errcode"]
        == 0
    )
    wework_clock.advance(1)
    answer = call(server, http, "appchat/send", {"chatid": chat, **text("hi")}, token=token)
    assert answer["errcode"] == 42001
    fresh = get_token(server, http)
    assert (
        call(server, http, "appchat/send", {"chatid": chat, **text("hi")}, token=fresh)["errcode"]
        == 0
    )


def test_token_lifetime_is_configurable(wework_clock, http):
    with FakeWeCom(clock=wework_clock, token_lifetime=60) as server:
        answer = http.get(
            server.api_root + "gettoken",
            params={"corpid": server.corp_id, "corpsecret": server.secret},
        ).json()
        assert answer["expires_in"] == 60
        wework_clock.advance(60)
        assert server.valid_tokens == []


def test_expired_unknown_and_missing_tokens_have_their_own_codes(server, http, token, chat):
    body = {"chatid": chat, **text("hi")}
    assert call(server, http, "appchat/send", body)["errcode"] == 41001
    assert call(server, http, "appchat/send", body, token="nonsense")["errcode"] == 40014
    server.expire_tokens()
    assert call(server, http, "appchat/send", body, token=token)["errcode"] == 42001
    server.forget_tokens()
    assert call(server, http, "appchat/send", body, token=token)["errcode"] == 40014


# -- app group chats ---------------------------------------------------------------------


def test_create_get_update_and_send_to_a_group_chat(server, http, token, chat):
    info = call(server, http, "appchat/get", method="GET", token=token, chatid=chat)
    assert info["chat_info"] == {
        "chatid": "ops1",
        "name": "oncall",
        "owner": "zhangsan",
        "userlist": ["zhangsan", "lisi"],
        "chat_type": 0,
    }
    update = {
        "chatid": chat,
        "name": "oncall-2",
        "add_user_list": ["wangwu"],
        "del_user_list": ["lisi"],
    }
    assert call(server, http, "appchat/update", update, token=token)["errcode"] == 0
    info = call(server, http, "appchat/get", method="GET", token=token, chatid=chat)
    assert info["chat_info"]["userlist"] == ["zhangsan", "wangwu"]
    assert info["chat_info"]["name"] == "oncall-2"
    assert (
        call(server, http, "appchat/send", {"chatid": chat, **markdown("**x**")}, token=token)[
            "errcode"
        ]
        == 0
    )
    (sent,) = server.chat_messages(chat)
    assert sent.msgtype == "markdown" and sent.content == "**x**"


def test_create_generates_a_chat_id_and_cuts_long_names(server, http, token):
    answer = call(
        server,
        http,
        "appchat/create",
        {"name": "群" * 60, "userlist": ["zhangsan", "lisi"]},
        token=token,
    )
    assert answer["errcode"] == 0
    chat = server.chats[answer["chatid"]]
    assert len(answer["chatid"]) <= 32 and answer["chatid"].isalnum()
    assert chat.name == "群" * 50
    assert chat.owner == "zhangsan"


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"name": "x", "userlist": ["zhangsan"]}, 40058),
        ({"name": "x", "userlist": ["zhangsan", "nobody"]}, 40003),
        ({"name": "x", "userlist": ["zhangsan", "lisi"], "chatid": "bad-id!"}, 40058),
        ({"name": "x", "userlist": ["zhangsan", "lisi"], "chatid": "a" * 33}, 40058),
        ({"name": "x", "userlist": ["zhangsan", "lisi"], "chatid": "ops1"}, 86215),
    ],
)
def test_create_checks_members_and_chat_ids(server, http, token, chat, body, errcode):
    assert call(server, http, "appchat/create", body, token=token)["errcode"] == errcode


def test_unknown_chats_answer_86001(server, http, token):
    assert (
        call(server, http, "appchat/send", {"chatid": "nope", **text("x")}, token=token)["errcode"]
        == 86001
    )
    assert (
        call(server, http, "appchat/get", method="GET", token=token, chatid="nope")["errcode"]
        == 86001
    )
    assert call(server, http, "appchat/update", {"chatid": "nope"}, token=token)["errcode"] == 86001


def test_text_and_markdown_limits_are_utf8_bytes(server, http, token, chat):
    def send(body):
        return call(server, http, "appchat/send", {"chatid": chat, **body}, token=token)["errcode"]

    assert send(text("a" * 2048)) == 0
    assert send(text("a" * 2049)) == 40058
    assert send(text("中" * 682 + "ab")) == 0  # 2048 bytes
    assert send(text("中" * 683)) == 40058  # 2049 bytes, only 683 characters
    assert send(markdown("😀" * 1024)) == 0  # 4096 bytes
    assert send(markdown("😀" * 1024 + "a")) == 40058
    assert send(text("")) == 44004
    assert send({"msgtype": "sticker", "sticker": {}}) == 40008
    assert len(server.chat_messages(chat)) == 3


def test_bodies_that_are_not_json_answer_47001(server, http, token):
    response = http.post(
        server.api_root + "appchat/send", params={"access_token": token}, data=b"{not json"
    )
    assert response.json()["errcode"] == 47001


# -- application messages -----------------------------------------------------------------


def test_application_message_reports_invalid_recipients_with_errcode_0(server, http, token):
    body = {
        "agentid": server.agent_id,
        "touser": "zhangsan|ghost",
        "toparty": "1|99",
        "totag": "7",
        **text("disk full"),
    }
    answer = call(server, http, "message/send", body, token=token)
    assert answer["errcode"] == 0
    assert answer["invaliduser"] == "ghost"
    assert answer["invalidparty"] == "99"
    assert answer["invalidtag"] == "7"
    assert answer["msgid"]
    (sent,) = server.app_messages()
    assert sent.msgid == answer["msgid"]
    assert sent.recipients == {"users": ("zhangsan",), "parties": ("1",), "tags": ()}


def test_application_message_to_nobody_valid_answers_81013(server, http, token):
    body = {"agentid": server.agent_id, "touser": "ghost", "toparty": "99", **text("x")}
    assert call(server, http, "message/send", body, token=token)["errcode"] == 81013
    assert server.app_messages() == []


def test_application_message_to_all_reaches_the_directory(server, http, token):
    body = {"agentid": server.agent_id, "touser": "@all", **text("x")}
    answer = call(server, http, "message/send", body, token=token)
    assert answer["errcode"] == 0 and "invaliduser" not in answer
    assert set(server.app_messages()[0].recipients["users"]) == server.users


def test_application_message_needs_the_tokens_agent_id(server, http, token):
    body = {"agentid": 42, "touser": "zhangsan", **text("x")}
    assert call(server, http, "message/send", body, token=token)["errcode"] == 40056


def test_duplicate_check_drops_identical_repeats_within_the_interval(
    server, http, token, wework_clock
):
    body = {
        "agentid": server.agent_id,
        "touser": "zhangsan",
        **text("same"),
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 600,
    }
    first = call(server, http, "message/send", body, token=token)
    second = call(server, http, "message/send", body, token=token)
    assert first["errcode"] == second["errcode"] == 0
    assert second["msgid"] == first["msgid"]
    assert len(server.app_messages()) == 1 and server.duplicates_dropped == 1
    wework_clock.advance(600)
    third = call(server, http, "message/send", body, token=token)
    assert third["msgid"] != first["msgid"]
    assert len(server.app_messages()) == 2


def test_without_duplicate_check_repeats_are_delivered(server, http, token):
    body = {"agentid": server.agent_id, "touser": "zhangsan", **text("same")}
    call(server, http, "message/send", body, token=token)
    call(server, http, "message/send", body, token=token)
    assert len(server.app_messages()) == 2


def test_registered_directory_entries_become_valid_recipients(server, http, token):
    server.add_users("newbie")
    server.add_tags("9")
    body = {"agentid": server.agent_id, "touser": "newbie", "totag": "9", **text("x")}
    answer = call(server, http, "message/send", body, token=token)
    assert answer["errcode"] == 0 and "invaliduser" not in answer and "invalidtag" not in answer


# -- group robots ------------------------------------------------------------------------


def robot(server, http, body, key=None):
    response = http.post(server.webhook_url(key), json=body)
    assert response.status_code == 200
    return response.json()["errcode"]


def test_robot_text_with_mentions_is_recorded(server, http):
    body = text(
        "disk full", mentioned_list=["zhangsan", "@all"], mentioned_mobile_list=["13800000000"]
    )
    assert robot(server, http, body) == 0
    (sent,) = server.robot_messages()
    assert sent.body["text"]["mentioned_list"] == ["zhangsan", "@all"]
    assert sent.target == "fake-robot-key-0001" and sent.content == "disk full"


def test_robot_keys_are_checked(server, http):
    assert robot(server, http, text("x"), key="wrong") == 93000
    assert http.post(server.api_root + "webhook/send", json=text("x")).json()["errcode"] == 93000
    server.add_robot("second-robot-key")
    assert robot(server, http, text("x"), key="second-robot-key") == 0
    server.disable_robot("second-robot-key")
    assert robot(server, http, text("x"), key="second-robot-key") == 93004


def test_robot_limits(server, http):
    assert robot(server, http, text("中" * 683)) == 40058
    assert robot(server, http, markdown("中" * 1366)) == 40058  # 4098 bytes
    assert robot(server, http, markdown("中" * 1365)) == 0
    assert robot(server, http, text("x", mentioned_list="zhangsan")) == 40058
    article = {"title": "t", "url": "https://example.com"}
    assert robot(server, http, {"msgtype": "news", "news": {"articles": [article] * 8}}) == 0
    assert robot(server, http, {"msgtype": "news", "news": {"articles": [article] * 9}}) == 40058
    assert robot(server, http, {"msgtype": "news", "news": {"articles": []}}) == 40058
    long_title = {"title": "标" * 43, "url": "https://example.com"}  # 129 bytes
    assert robot(server, http, {"msgtype": "news", "news": {"articles": [long_title]}}) == 40058


def test_robot_image_needs_a_matching_md5(server, http):
    raw = b"\x89PNG fake"
    image = {"base64": base64.b64encode(raw).decode(), "md5": hashlib.md5(raw).hexdigest()}
    assert robot(server, http, {"msgtype": "image", "image": image}) == 0
    image["md5"] = "0" * 32
    assert robot(server, http, {"msgtype": "image", "image": image}) == 40058


def test_robot_takes_20_messages_in_any_60_seconds(server, http, wework_clock):
    for i in range(20):
        assert robot(server, http, text(f"m{i}")) == 0
        wework_clock.advance(1)  # messages at t=0..19
    assert robot(server, http, text("over")) == 45009  # t=20: 20 in the last minute
    wework_clock.advance(39.9)  # t=59.9: the first is still inside the window
    assert robot(server, http, text("over")) == 45009
    wework_clock.advance(0.1)  # t=60: the first has left the window
    assert robot(server, http, text("ok")) == 0
    assert robot(server, http, text("over")) == 45009  # t=60: 20 in (0, 60] again
    times = [s.at for s in server.robot_messages()]
    assert len(times) == 21
    assert all(sum(1 for t in times if start <= t < start + 60) <= 20 for start in times)


def test_robot_windows_are_per_key(server, http):
    server.add_robot("other-robot-key")
    for _ in range(20):
        robot(server, http, text("x"))
    assert robot(server, http, text("x")) == 45009
    assert robot(server, http, text("x"), key="other-robot-key") == 0


# -- faults -----------------------------------------------------------------------------


def test_busy_and_rate_faults_answer_envelopes_and_skip_gettoken(server, http, chat):
    server.fail_next(1, "busy")
    server.fail_next(1, "rate")
    server.fail_next(1, "errcode", errcode=48002)
    token = get_token(server, http)  # not consumed by gettoken
    body = {"chatid": chat, **text("x")}
    assert [call(server, http, "appchat/send", body, token=token)["errcode"] for _ in range(4)] == [
        -1,
        45009,
        48002,
        0,
    ]


def test_faults_can_target_one_endpoint(server, http, token, chat):
    server.fail_next(1, "busy", path="webhook/send")
    assert (
        call(server, http, "appchat/send", {"chatid": chat, **text("x")}, token=token)["errcode"]
        == 0
    )
    assert robot(server, http, text("x")) == -1
    assert robot(server, http, text("x")) == 0


def test_5xx_drop_and_slow_faults(server, http):
    server.fail_next(1, "5xx", status=502, retry_after=3)
    response = http.post(server.webhook_url(), json=text("x"))
    assert response.status_code == 502 and response.headers["Retry-After"] == "3"
    server.fail_next(1, "drop")
    with pytest.raises(requests.ConnectionError):
        http.post(server.webhook_url(), json=text("x"))
    server.fail_next(1, "slow", delay=5)
    with pytest.raises(requests.Timeout):
        http.post(server.webhook_url(), json=text("x"), timeout=0.05)
    assert robot(server, http, text("x")) == 0


def test_unknown_fault_kind_is_an_error(server):
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.fail_next(1, "explode")
    with pytest.raises(ValueError, match="errcode"):
        server.fail_next(1, "errcode")


# -- records ----------------------------------------------------------------------------


def test_every_call_is_recorded_parsed_with_its_answer(server, http, token, chat):
    call(server, http, "appchat/send", {"chatid": chat, **text("")}, token=token)
    calls = server.calls
    assert [c.endpoint for c in calls] == ["gettoken", "appchat/create", "appchat/send"]
    assert calls[-1].body == {"chatid": chat, **text("")}
    assert calls[-1].errcode == 44004
    assert calls[-1].query["access_token"] == token
    server.reset()
    assert server.calls == [] and server.token_requests == 0
    assert chat in server.chats  # state survives a reset


# -- the API gateway --------------------------------------------------------------------


def gateway(server, http, resource, body, auth=None):
    headers = {"X-Bkapi-Authorization": json.dumps(auth)} if auth is not None else {}
    response = http.post(server.gateway_root + resource, json=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"result", "code", "message", "data", "request_id"}
    assert response.headers["X-Bkapi-Request-Id"] == answer["request_id"]
    return answer


AUTH = {
    "bk_app_code": "fake-app",
    "bk_app_secret": "fake-gateway-secret-0001",
    "bk_username": "alert-bot",
}


def test_gateway_creates_and_sends_with_header_auth(server, http):
    create = {
        "name": "oncall",
        "owner": "zhangsan",
        "userlist": ["zhangsan", "lisi"],
        "chatid": "gw1",
    }
    answer = gateway(server, http, "create_appchat/", create, AUTH)
    assert answer["result"] is True and answer["code"] == 0
    assert answer["data"]["chatid"] == "gw1"
    answer = gateway(server, http, "send_appchat/", {"chatid": "gw1", **text("hi")}, AUTH)
    assert answer["result"] is True
    (sent,) = server.chat_messages("gw1")
    assert sent.via == "gateway" and sent.content == "hi"
    assert [c.endpoint for c in server.calls] == ["gateway/create_appchat", "gateway/send_appchat"]


def test_gateway_accepts_credentials_in_the_body(server, http, chat):
    answer = gateway(server, http, "send_appchat/", {"chatid": chat, **text("hi"), **AUTH})
    assert answer["result"] is True
    assert "bk_app_secret" not in server.chat_messages(chat)[0].body


@pytest.mark.parametrize(
    "auth",
    [
        None,
        {**AUTH, "bk_app_secret": "wrong"},
        {**AUTH, "bk_app_code": "other"},
        {k: v for k, v in AUTH.items() if k != "bk_username"},
    ],
)
def test_gateway_rejects_bad_credentials(server, http, chat, auth):
    answer = gateway(server, http, "send_appchat/", {"chatid": chat, **text("hi")}, auth)
    assert answer["result"] is False and answer["code"] == 1640001
    assert "authentication failed" in answer["message"]
    assert server.chat_messages(chat) == []


def test_gateway_carries_provider_errors_in_its_envelope(server, http):
    answer = gateway(server, http, "send_appchat/", {"chatid": "nope", **text("hi")}, AUTH)
    assert answer["result"] is False and answer["code"] == 86001
    assert answer["data"]["errcode"] == 86001
    answer = gateway(server, http, "send_appchat/", {"chatid": "nope", **text("中" * 683)}, AUTH)
    assert answer["code"] == 86001  # the chat is checked before the content
    server.fail_next(1, "busy", path="send_appchat/")
    answer = gateway(server, http, "send_appchat/", {"chatid": "nope", **text("hi")}, AUTH)
    assert answer["result"] is False and answer["code"] == -1


# -- the pytest plugin ------------------------------------------------------------------


def test_the_fixtures_work_in_a_users_test_suite(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_robot(wework_server, wework_clock):
            url = wework_server.webhook_url()
            body = {"msgtype": "text", "text": {"content": "hello"}}
            assert requests.post(url, json=body).json()["errcode"] == 0
            assert wework_server.robot_messages()[0].content == "hello"
            wework_clock.advance(10)
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_envelope_faults_can_let_calls_through_first(server, http, token, chat):
    server.fail_next(1, "busy", path="appchat/send", after=2)
    body = {"chatid": chat, **text("x")}
    codes = [call(server, http, "appchat/send", body, token=token)["errcode"] for _ in range(4)]
    assert codes == [0, 0, -1, 0]


def test_tokens_can_expire_after_a_number_of_calls(server, http, token, chat):
    server.expire_tokens_after(2)
    body = {"chatid": chat, **text("x")}
    codes = [call(server, http, "appchat/send", body, token=token)["errcode"] for _ in range(3)]
    assert codes == [0, 0, 42001]
    fresh = get_token(server, http)  # tokens issued afterwards stay valid
    assert call(server, http, "appchat/send", body, token=fresh)["errcode"] == 0
