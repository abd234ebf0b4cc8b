"""The fake Slack answers plain ``requests`` posts the way Slack's incoming webhooks do."""

from __future__ import annotations

import json

import pytest
import requests
from notifier_slack.testing import FakeSlack

from notifier.clock import FakeClock

BLOCK = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def slack(clock):
    with FakeSlack(clock=clock) as server:
        yield server


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False
        yield session


def post(http, url, payload=None, **kwargs):
    if payload is not None:
        kwargs["json"] = payload
    response = http.post(url, **kwargs)
    return response.status_code, response.text


def test_a_valid_post_answers_ok_and_is_recorded_for_its_channel(slack, http):
    url = slack.webhook("#ops")
    assert post(http, url, {"text": "hello", "blocks": [BLOCK]}) == (200, "ok")
    [message] = slack.messages("#ops")
    assert (message.text, message.blocks) == ("hello", (BLOCK,))
    assert slack.messages("#other") == []


def test_a_legacy_form_encoded_payload_is_accepted(slack, http):
    url = slack.webhook()
    assert post(http, url, data={"payload": json.dumps({"text": "form"})}) == (200, "ok")
    assert slack.messages()[0].text == "form"


def header(text, kind="plain_text"):
    return {"blocks": [{"type": "header", "text": {"type": kind, "text": text}}]}


def section(text):
    return {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        ({}, (400, "no_text")),
        ({"text": "  "}, (400, "no_text")),
        ({"text": "x", "blocks": [BLOCK] * 51}, (400, "invalid_payload")),
        (header("x", kind="mrkdwn"), (400, "invalid_payload")),
        (header("x" * 151), (400, "invalid_payload")),
        (section("x" * 3001), (400, "invalid_payload")),
        (
            {"blocks": [{"type": "section", "fields": [BLOCK["text"]] * 11}]},
            (400, "invalid_payload"),
        ),
        ({"blocks": [{"type": "context", "elements": []}]}, (400, "invalid_payload")),
        ({"blocks": [{"type": "mystery"}]}, (400, "invalid_payload")),
    ],
)
def test_an_invalid_payload_is_refused_with_slacks_error_name(slack, http, payload, answer):
    assert post(http, slack.webhook(), payload) == answer
    assert slack.messages() == []
    assert slack.problems  # says why, for the test's own failure message


def test_a_body_that_is_not_json_is_an_invalid_payload(slack, http):
    assert post(
        http, slack.webhook(), data=b"{nope", headers={"Content-Type": "application/json"}
    ) == (
        400,
        "invalid_payload",
    )


def test_text_over_forty_thousand_characters_is_truncated_and_flagged_like_slack_does(slack, http):
    assert post(http, slack.webhook(), {"text": "磁" * 40_001}) == (200, "ok")
    message = slack.messages()[0]
    assert message.truncated
    assert len(message.text) == 40_000


def test_a_wrong_token_for_a_known_webhook_is_invalid_token_and_an_unknown_one_no_service(
    slack, http
):
    url = slack.webhook()
    root = url.rsplit("/", 1)[0]
    assert post(http, root + "/wrong", {"text": "x"}) == (403, "invalid_token")
    assert post(http, slack.url + "/services/T1/B1/x", {"text": "x"}) == (404, "no_service")
    assert post(http, slack.url + "/elsewhere", {"text": "x"}) == (404, "no_service")


def test_channel_states_and_scripted_rejections_answer_with_slacks_statuses(slack, http):
    url = slack.webhook("#ops")
    slack.reject_next("action_prohibited")
    assert post(http, url, {"text": "x"}) == (403, "action_prohibited")
    slack.archive("#ops")
    assert post(http, url, {"text": "x"}) == (410, "channel_is_archived")
    with pytest.raises(ValueError, match="unknown Slack error"):
        slack.reject_next("made_up")


def test_rate_limit_next_answers_429_with_retry_after(slack, http):
    slack.rate_limit_next(retry_after=7)
    response = http.post(slack.webhook(), json={"text": "x"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_a_per_second_allowance_answers_429_until_the_clock_moves_on(clock, http):
    with FakeSlack(clock=clock, per_second=2) as slack:
        url = slack.webhook()
        answers = [post(http, url, {"text": str(i)})[0] for i in range(3)]
        clock.advance(1.0)
        answers.append(post(http, url, {"text": "later"})[0])
    assert answers == [200, 200, 429, 200]
    assert [m.text for m in slack.messages()] == ["0", "1", "later"]
