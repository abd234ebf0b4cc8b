"""notifier.parts: one alert sent as several provider messages, resumed after the last
part that arrived, paced part by part and stopped at the delivery's deadline."""

from __future__ import annotations

import attrs
import pytest

from notifier import deadline
from notifier.clock import FakeClock
from notifier.errors import DeliveryTimeout, ProviderError
from notifier.models import DeliveryContext
from notifier.parts import PartLedger, send_parts


@attrs.frozen
class Posted:
    attempts: int = 1


class Chat:
    """A provider that keeps what it accepted and refuses the calls it is told to."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.refuse: set[int] = set()  # call numbers (1-based) refused once
        self.calls = 0

    def post(self, body: str) -> Posted:
        self.calls += 1
        if self.calls in self.refuse:
            raise ProviderError("busy", code=-1, retryable=True)
        self.messages.append(body)
        return Posted()


PARTS = ["(1/3) a", "(2/3) b", "(3/3) c"]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def ledger(clock):
    return PartLedger(clock=clock)


def test_a_retry_starts_at_the_part_that_failed(ledger):
    chat, delivery = Chat(), DeliveryContext(idempotency_key="k")
    chat.refuse = {2}
    with pytest.raises(ProviderError) as caught:
        send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    assert str(caught.value) == "busy [part 2/3 failed, 1 sent before it; a retry starts at part 2]"
    assert caught.value.attempts == 2

    sent = send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    assert chat.messages == PARTS
    assert (sent.total, sent.skipped, sent.attempts) == (3, 1, 2)
    result = sent.send_result("m-1", {"chat": "x"})
    assert (result.message_id, result.parts, result.attempts) == ("m-1", 3, 2)
    assert result.details == {"chat": "x", "resumed_at_part": 2}


def test_a_failure_that_is_no_notifier_error_leaves_the_record_right(ledger):
    delivery = DeliveryContext(idempotency_key="k")
    chat, failed = Chat(), []

    def post(body: str) -> Posted:
        if body == PARTS[2] and not failed:
            failed.append(body)
            raise KeyError("a plugin bug")
        return chat.post(body)

    with pytest.raises(KeyError):
        send_parts(PARTS, post, ledger=ledger, delivery=delivery)
    send_parts(PARTS, post, ledger=ledger, delivery=delivery)
    assert chat.messages == PARTS


def test_without_an_idempotency_key_every_attempt_starts_at_part_one(ledger):
    chat = Chat()
    chat.refuse = {2}
    with pytest.raises(ProviderError, match=r"\[part 2/3 failed, 1 sent before it\]$"):
        send_parts(PARTS, chat.post, ledger=ledger, delivery=DeliveryContext())
    sent = send_parts(PARTS, chat.post, ledger=ledger, delivery=DeliveryContext())
    assert chat.messages == [PARTS[0], *PARTS] and sent.skipped == 0


def test_other_content_under_the_same_key_is_sent_whole(ledger):
    chat, delivery = Chat(), DeliveryContext(idempotency_key="k")
    chat.refuse = {2}
    with pytest.raises(ProviderError):
        send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    other = [p.upper() for p in PARTS]
    assert send_parts(other, chat.post, ledger=ledger, delivery=delivery).skipped == 0
    assert chat.messages == [PARTS[0], *other]


def test_a_delivery_sent_whole_is_forgotten_so_a_re_send_sends_every_part(ledger):
    chat, delivery = Chat(), DeliveryContext(idempotency_key="k")
    send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    assert chat.messages == PARTS + PARTS


def test_a_record_expires_after_its_ttl(clock):
    ledger = PartLedger(clock=clock, ttl=3600)
    chat, delivery = Chat(), DeliveryContext(idempotency_key="k")
    chat.refuse = {2}
    with pytest.raises(ProviderError):
        send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    clock.advance(3601)
    assert send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery).skipped == 0


def test_each_call_after_this_attempts_first_is_paced(ledger):
    chat, paced = Chat(), []
    chat.refuse = {2}
    delivery = DeliveryContext(idempotency_key="k", pace=lambda: paced.append(chat.calls) or 0.0)
    with pytest.raises(ProviderError):
        send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    assert paced == [1]  # before the second part, not before the first
    send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    # The resumed attempt's first call took the dispatcher's slot; only the third waits.
    assert paced == [1, 3]


def test_no_part_starts_after_the_deadline_and_a_retry_resumes_there(ledger):
    chat, delivery = Chat(), DeliveryContext(idempotency_key="k")
    with deadline.within(0.0), pytest.raises(DeliveryTimeout) as caught:
        send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    assert chat.messages == PARTS[:1]  # the first was under way when the time ran out
    assert caught.value.retryable and caught.value.attempts == 1
    assert "a retry starts at part 2" in str(caught.value)
    with deadline.within(30.0):
        send_parts(PARTS, chat.post, ledger=ledger, delivery=delivery)
    assert chat.messages == PARTS


def test_a_single_part_is_never_recorded(ledger):
    assert PartLedger.key("k", ["only"]) is None
    assert PartLedger.key("", PARTS) is None
    chat = Chat()
    sent = send_parts(["only"], chat.post, ledger=ledger, delivery=DeliveryContext())
    assert (sent.total, sent.skipped, sent.send_result().details) == (1, 0, {})
