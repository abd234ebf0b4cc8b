"""With every logger at DEBUG, no secret reaches logs, errors, reprs, events or results."""

from __future__ import annotations

import logging
import traceback

import pytest
from http_fake_provider import CORP_SECRET, GETTOKEN, SEND, FakeProvider

from notifier.errors import NotifierError
from notifier.http import (
    AccessTokenAuth,
    Endpoint,
    GatewayAuth,
    HttpClient,
    QueryKeyAuth,
    RetryPolicy,
    TokenCache,
    endpoint_token_fetcher,
)
from notifier.redact import Secret

ROBOT_KEY = "robot-key-9f8e7d6c"
APP_SECRET = "gateway-secret-5b4a3c"


def _chain(exc: BaseException) -> list[BaseException]:
    seen, todo, out = set(), [exc], []
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        todo.extend([current.__cause__, current.__context__])
        todo.extend(a for a in current.args if isinstance(a, BaseException))
    return out


def _exception_text(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(exc))]
    for item in _chain(exc):
        parts += [str(item), repr(item)]
    return "\n".join(parts)


@pytest.fixture
def debug_everywhere(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "requests", "notifier"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _captured(caplog) -> str:
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(_exception_text(record.exc_info[1]))
    return "\n".join(lines)


def test_no_secret_leaks_from_a_full_send_and_a_failed_send(debug_everywhere, clock):
    events, outputs = [], []
    with FakeProvider() as provider:
        provider.route("POST", "/webhook/send", lambda r: {"errcode": 0, "errmsg": "ok"})
        provider.route("POST", "/gw/send/", lambda r: {"errcode": 0, "errmsg": "ok"})
        common = dict(
            clock=clock,
            observe=events.append,
            channel="ops",
            timeout=(1.0, 0.3),
            retry=RetryPolicy(max_attempts=2, jitter=False),
        )
        plain = HttpClient(provider.url, **common)
        fetch = endpoint_token_fetcher(
            plain, GETTOKEN, {"corpid": "corp", "corpsecret": Secret(CORP_SECRET)}
        )
        token_auth = AccessTokenAuth(TokenCache(fetch, clock=clock))
        clients = {
            "token": (HttpClient(provider.url, auth=token_auth, **common), SEND),
            "robot": (
                HttpClient(provider.url, auth=QueryKeyAuth("key", Secret(ROBOT_KEY)), **common),
                Endpoint("robot", "POST", "webhook/send", parse=SEND.parse),
            ),
            "gateway": (
                HttpClient(
                    provider.url,
                    auth=GatewayAuth("app", Secret(APP_SECRET), "svc", in_body=True),
                    **common,
                ),
                Endpoint("gw", "POST", "gw/send/", parse=SEND.parse),
            ),
        }
        for client, endpoint in clients.values():
            # A full send, then failures of every kind: 5xx, dropped, slow, bad envelope.
            outputs.append(repr(client.call(endpoint, json={"text": "ok"})))
            outputs.append(repr(client) + repr(client.auth))
            path = "/" + endpoint.path
            provider.fail_next(1, status=503, path=path)
            provider.drop_next(1, path=path)
            provider.delay_next(2, path=path)
            echo = f'{{"errcode": 40003, "errmsg": "bad key {ROBOT_KEY} {APP_SECRET}"}}'
            provider.fail_next(1, status=200, body=echo.encode(), path=path)
            for _ in range(4):
                with pytest.raises(NotifierError) as caught:
                    client.call(endpoint, json={"text": "fail"})
                outputs.append(_exception_text(caught.value))
        provider.expire_tokens()
        provider.reject_all_tokens = True
        with pytest.raises(NotifierError) as caught:
            clients["token"][0].call(SEND, json={})
        outputs.append(_exception_text(caught.value))
        token = provider.requests_to("/message/send")[0].query["access_token"]

    assert events, "the test made requests"
    outputs.extend(repr(e) for e in events)
    everything = "\n".join(outputs) + "\n" + _captured(debug_everywhere)
    # Sanity: the capture really saw urllib3's request lines.
    assert "/message/send?access_token=***" in everything
    assert "errcode 40003: bad key ***" in everything
    assert "timed out" in everything and "before the answer" in everything
    for secret in (token, CORP_SECRET, ROBOT_KEY, APP_SECRET):
        assert secret not in everything, secret


def test_a_connection_error_cause_chain_carries_no_webhook_key(clock):
    from notifier.testing import LocalServer

    with LocalServer() as gone:
        root = gone.url
    client = HttpClient(
        root,
        auth=QueryKeyAuth("key", Secret(ROBOT_KEY)),
        clock=clock,
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(NotifierError) as caught:
        client.call(Endpoint("robot", "POST", "webhook/send"), json={})
    text = _exception_text(caught.value)
    text += "".join(repr(vars(e)) for e in _chain(caught.value) if hasattr(e, "__dict__"))
    assert "key=***" in text
    assert ROBOT_KEY not in text
