"""EnvelopeServer and RateWindows, the machinery the HTTP-200-and-code fakes share."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier.clock import FakeClock
from notifier.testing import EnvelopeServer, RateWindows, Refusal, Request, signature_problem

TOO_FAST, BAD_BODY = 130101, 40035


class Robot(EnvelopeServer):
    """A provider in a few lines: a token, a JSON body, twenty calls a minute."""

    refusal_texts = {TOO_FAST: "send too fast"}
    unscripted_endpoints = frozenset({"token"})

    def setup(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.seen: list[tuple[str, int]] = []
        self.envelope_route("POST", "/send", self.send)
        self.envelope_route("GET", "/token", lambda request: {"token": "t"}, endpoint="token")

    def send(self, request: Request) -> None:
        body = self.json_object(request, BAD_BODY)
        if not self.windows.admit(request.query["key"], self.clock.monotonic(), [(2, 60.0)]):
            raise Refusal(TOO_FAST)
        self.sent.append(body)

    def answered(self, request: Request, endpoint: str, code: int) -> None:
        self.seen.append((endpoint, code))


class Feedback(Robot):
    code_field, message_field, ok_message = "code", "msg", "success"


@pytest.fixture
def robot():
    with Robot(clock=FakeClock()) as server:
        yield server


def send(server: EnvelopeServer, body: Any = None, key: str = "k") -> dict[str, Any]:
    body = {"text": "hi"} if body is None else body
    return requests.post(server.url + "/send", params={"key": key}, json=body, timeout=5).json()


def test_a_handler_answers_http_200_with_the_ok_code_and_its_fields(robot):
    answer = requests.get(robot.url + "/token", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"errcode": 0, "errmsg": "ok", "token": "t"}
    assert send(robot) == {"errcode": 0, "errmsg": "ok"}
    assert robot.sent == [{"text": "hi"}]


def test_a_refusal_answers_its_code_with_its_detail_or_the_providers_text(robot):
    assert send(robot, [1]) == {"errcode": BAD_BODY, "errmsg": "body is not a JSON object"}
    assert [send(robot)["errcode"] for _ in range(3)] == [0, 0, TOO_FAST]
    assert send(robot)["errmsg"] == "send too fast"
    assert robot.answers == [BAD_BODY, 0, 0, TOO_FAST, TOO_FAST]
    assert robot.seen[-1] == ("/send", TOO_FAST)


def test_the_field_names_and_the_ok_message_are_the_providers():
    with Feedback() as server:
        assert send(server) == {"code": 0, "msg": "success"}


def test_scripted_codes_answer_before_any_check_and_can_let_calls_through_first(robot):
    robot.refuse_next(2, -1, after=1)
    assert [send(robot, [1])["errcode"] for _ in range(4)] == [BAD_BODY, -1, -1, BAD_BODY]
    robot.refuse_next(1, 45009, path="/send")
    assert send(robot)["errcode"] == 45009
    assert robot.sent == []


def test_a_scripted_code_without_a_path_leaves_the_unscripted_endpoints_alone(robot):
    robot.refuse_next(1, -1)
    assert requests.get(robot.url + "/token", timeout=5).json()["errcode"] == 0
    assert send(robot)["errcode"] == -1


def test_reset_forgets_answers_and_scripted_codes(robot):
    send(robot)
    robot.refuse_next(1, -1)
    robot.reset()
    assert robot.answers == [] and robot.requests == []
    assert send(robot)["errcode"] == 0


def test_windows_count_each_key_apart_and_forget_calls_older_than_the_window():
    windows = RateWindows()
    assert [windows.admit("a", 0.0, [(2, 60.0)]) for _ in range(3)] == [True, True, False]
    assert windows.admit("b", 0.0, [(2, 60.0)])
    assert not windows.admit("a", 59.9, [(2, 60.0)])
    assert windows.admit("a", 60.0, [(2, 60.0)])


def test_windows_apply_every_limit_and_a_refused_call_is_not_counted():
    windows = RateWindows()
    limits = [(2, 1.0), (3, 60.0)]
    assert [windows.admit("a", 0.0, limits) for _ in range(3)] == [True, True, False]
    assert windows.admit("a", 1.0, limits)
    assert not windows.admit("a", 2.0, limits)  # three in the last minute
    assert windows.admit("a", 60.0, limits)


def test_going_over_a_window_with_a_penalty_blocks_the_key_for_the_penalty():
    windows = RateWindows()
    assert [windows.admit("a", 0.0, [(1, 60.0)], penalty=600.0) for _ in range(2)] == [
        True,
        False,
    ]
    assert not windows.admit("a", 120.0, [(1, 60.0)], penalty=600.0)
    assert windows.admit("a", 600.0, [(1, 60.0)], penalty=600.0)


def _sign(stamp: int) -> str:
    digest = hmac.new(b"key", str(stamp).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("stamp", "sign", "problem"),
    [
        ("1000", _sign(1000), None),
        (1000, _sign(1000), None),
        ("1061", _sign(1061), "timestamp"),
        ("", _sign(1000), "timestamp"),
        ("-5", _sign(1000), "timestamp"),
        ("1000", _sign(1001), "sign"),
        ("1000", "not base64!", "sign"),
        ("1000", None, "sign"),
    ],
)
def test_a_timestamped_signature_is_checked_for_freshness_then_for_its_value(stamp, sign, problem):
    assert signature_problem(stamp, sign, now=1000, tolerance=60, expected=_sign) == problem


def test_the_example_in_the_testing_guide_runs():
    guide = Path(__file__).parents[2] / "docs" / "testing-channels.md"
    text = guide.read_text(encoding="utf-8")
    section = text.split("### A fake for a provider that answers HTTP 200 and a code", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, str(guide), "exec"), {"__name__": "guide_example"})
