"""Envelope parsers turn answers into data or typed errors."""

from __future__ import annotations

import pytest
import requests
from http_fake_provider import CODES

from notifier.errors import AuthError, ProviderError, RateLimited, TokenInvalid
from notifier.http import Parsed, errcode_envelope, gateway_envelope, json_or_status


def answer(status=200, body=b"", headers=None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else body.encode()
    response.headers.update(headers or {})
    response.reason = "Reason"
    return response


parse = errcode_envelope(CODES)


def test_errcode_zero_returns_the_whole_body():
    assert parse(answer(body='{"errcode": 0, "errmsg": "ok", "msgid": "m1"}'))["msgid"] == "m1"


@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        (42001, TokenInvalid, False),
        (45009, RateLimited, True),
        (-1, ProviderError, True),
        (40001, AuthError, False),
        (86001, ProviderError, False),
    ],
)
def test_errcodes_map_onto_the_error_tree(code, kind, retryable):
    with pytest.raises(kind) as caught:
        parse(answer(body=f'{{"errcode": {code}, "errmsg": "m"}}'))
    assert type(caught.value) is kind
    assert caught.value.retryable is retryable
    assert caught.value.code == code


def test_an_http_200_without_errcode_is_an_error_not_success():
    with pytest.raises(ProviderError, match="no errcode"):
        parse(answer(body='{"ok": true}'))


def test_a_proxy_error_page_is_judged_by_its_status():
    with pytest.raises(ProviderError) as caught:
        parse(answer(502, "<html>bad gateway</html>"))
    assert caught.value.retryable is True
    assert caught.value.code == 502


def test_429_is_rate_limited_with_the_retry_after_header():
    with pytest.raises(RateLimited) as caught:
        json_or_status(answer(429, "", {"Retry-After": "12"}))
    assert caught.value.retry_after == 12


def test_a_non_json_success_answer_is_a_provider_error():
    with pytest.raises(ProviderError, match="not JSON"):
        parse(answer(body="<html>login</html>", headers={"Content-Type": "text/html"}))


def test_json_or_status_returns_json_text_or_none():
    assert json_or_status(answer(body='{"a": 1}')) == {"a": 1}
    assert json_or_status(answer(body="plain")) == "plain"
    assert json_or_status(answer(204)) is None
    with pytest.raises(AuthError):
        json_or_status(answer(401))


def test_a_gateway_envelope_returns_data_and_request_id():
    result = gateway_envelope(CODES)(
        answer(body='{"result": true, "code": 0, "data": {"chatid": "c"}, "request_id": "r"}')
    )
    assert result == Parsed({"chatid": "c"}, "r")


def test_a_provider_errcode_inside_gateway_data_is_classified():
    with pytest.raises(TokenInvalid) as caught:
        gateway_envelope(CODES)(
            answer(
                body='{"result": false, "code": 1, "data": {"errcode": 40014, "errmsg": "x"},'
                ' "request_id": "r2"}'
            )
        )
    assert caught.value.request_id == "r2"


@pytest.mark.parametrize(
    ("code", "kind"), [(45009, RateLimited), (40001, AuthError), (-1, ProviderError)]
)
def test_every_error_from_a_gateway_keeps_its_request_id_whatever_its_class(code, kind):
    with pytest.raises(kind) as caught:
        gateway_envelope(CODES)(
            answer(
                body=f'{{"result": false, "code": 1, "data": {{"errcode": {code},'
                ' "errmsg": "x"}, "request_id": "r3"}'
            )
        )
    assert (caught.value.code, caught.value.request_id) == (code, "r3")
