"""Auth strategies: gateway header and body injection, static credentials, reprs."""

from __future__ import annotations

import json

import pytest

from notifier.http import (
    GATEWAY_HEADER,
    BearerAuth,
    Endpoint,
    GatewayAuth,
    HeaderAuth,
    HttpClient,
    QueryKeyAuth,
    gateway_envelope,
)
from notifier.redact import Secret
from notifier.testing import LocalServer, Request

APP_SECRET = "gw-app-secret-Lm42"


class FakeGateway(LocalServer):
    def setup(self) -> None:
        self.route("POST", "/send_appchat/", self.ok)
        self.route("GET", "/get_appchat/", self.ok)

    def ok(self, request: Request) -> dict:
        return {
            "result": True,
            "code": 0,
            "message": "",
            "data": {"errcode": 0},
            "request_id": "r1",
        }


@pytest.fixture
def gateway():
    with FakeGateway() as server:
        yield server


SEND = Endpoint("send_appchat", "POST", "send_appchat/", parse=gateway_envelope())
GET = Endpoint("get_appchat", "GET", "get_appchat/", parse=gateway_envelope())


def test_gateway_credentials_go_in_the_authorization_header(gateway):
    client = HttpClient(gateway.url, auth=GatewayAuth("app", APP_SECRET, "svc"))
    result = client.call(SEND, json={"chatid": "c", "msgtype": "text"})
    assert result.request_id == "r1"
    request = gateway.requests[-1]
    assert json.loads(request.header(GATEWAY_HEADER)) == {
        "bk_app_code": "app",
        "bk_app_secret": APP_SECRET,
        "bk_username": "svc",
    }
    assert request.json() == {"chatid": "c", "msgtype": "text"}  # body untouched by default


def test_older_gateways_get_the_fields_in_the_body_without_overriding_the_caller(gateway):
    client = HttpClient(gateway.url, auth=GatewayAuth("app", APP_SECRET, "svc", in_body=True))
    client.call(SEND, json={"chatid": "c", "bk_username": "alice", "name": "告警"})
    body = gateway.requests[-1].json()
    assert body == {
        "bk_app_code": "app",
        "bk_app_secret": APP_SECRET,
        "bk_username": "alice",
        "chatid": "c",
        "name": "告警",
    }
    assert int(gateway.requests[-1].header("Content-Length")) == len(gateway.requests[-1].body)


def test_older_gateways_get_the_fields_in_the_query_of_a_get(gateway):
    client = HttpClient(gateway.url, auth=GatewayAuth("app", APP_SECRET, "svc", in_body=True))
    client.call(GET, params={"chat_id": "c", "bk_username": "bob"})
    query = gateway.requests[-1].query
    assert query["bk_username"] == "bob"
    assert query["bk_app_code"] == "app"
    assert query["bk_app_secret"] == APP_SECRET


def test_a_caller_set_gateway_header_field_wins_over_the_configured_one(gateway):
    client = HttpClient(gateway.url, auth=GatewayAuth("app", APP_SECRET, "svc"))
    client.call(SEND, json={}, headers={GATEWAY_HEADER: json.dumps({"bk_username": "carol"})})
    sent = json.loads(gateway.requests[-1].header(GATEWAY_HEADER))
    assert sent["bk_username"] == "carol"
    assert sent["bk_app_code"] == "app"


def test_a_gateway_failure_keeps_its_code_message_and_request_id(gateway):
    gateway.route(
        "POST",
        "/send_appchat/",
        lambda r: {
            "result": False,
            "code": 1640001,
            "message": "app not allowed",
            "data": None,
            "request_id": "req-9",
        },
    )
    client = HttpClient(gateway.url, auth=GatewayAuth("app", APP_SECRET, "svc"), channel="gw")
    from notifier.errors import ProviderError

    with pytest.raises(ProviderError) as caught:
        client.call(SEND, json={})
    assert caught.value.code == 1640001
    assert caught.value.request_id == "req-9"
    assert "app not allowed" in str(caught.value)


def test_query_key_bearer_and_header_auth_add_their_credentials(gateway):
    gateway.route("GET", "/x", lambda r: {})
    ep = Endpoint("x", "GET", "x")
    HttpClient(gateway.url, auth=QueryKeyAuth("key", "robot-key-Pw93")).call(ep)
    HttpClient(gateway.url, auth=BearerAuth("bearer-tok-Yv55")).call(ep)
    HttpClient(gateway.url, auth=HeaderAuth({"X-Api-Key": "hdr-key-Rr11"})).call(ep)
    key, bearer, header = gateway.requests_to("/x")
    assert key.query["key"] == "robot-key-Pw93"
    assert bearer.header("Authorization") == "Bearer bearer-tok-Yv55"
    assert header.header("X-Api-Key") == "hdr-key-Rr11"


@pytest.mark.parametrize(
    "auth",
    [
        GatewayAuth("app", APP_SECRET, "svc"),
        QueryKeyAuth("key", "robot-key-Pw93"),
        BearerAuth("bearer-tok-Yv55"),
        HeaderAuth({"X-Api-Key": "hdr-key-Rr11"}),
    ],
    ids=["gateway", "query-key", "bearer", "header"],
)
def test_no_auth_strategy_shows_its_secret_in_repr(auth):
    text = repr(auth) + str(auth)
    for secret in (APP_SECRET, "robot-key-Pw93", "bearer-tok-Yv55", "hdr-key-Rr11"):
        assert secret not in text
    assert len(auth.identity) == 16


def test_different_credentials_have_different_identities():
    assert QueryKeyAuth("key", "k-one-1234").identity != QueryKeyAuth("key", "k-two-1234").identity
    assert (
        QueryKeyAuth("key", Secret("same-1234")).identity
        == QueryKeyAuth("key", "same-1234").identity
    )
