"""Errors carry their data as declared fields, and gain context as copies raised from
the original, never by being rewritten."""

from __future__ import annotations

import pytest

from notifier.errors import (
    AuthError,
    ChannelError,
    ConfigError,
    ConfigIssue,
    DuplicateKindError,
    NotifierError,
    ProviderError,
    RateLimited,
    TokenInvalid,
    TransportError,
)


@pytest.mark.parametrize(
    "error",
    [
        NotifierError("x"),
        ChannelError("x"),
        AuthError("x"),
        RateLimited("x"),
        ProviderError("x"),
        TransportError("x", sent=False),
        ConfigError([ConfigIssue("f.toml", "a", "a number")]),
        DuplicateKindError("k", "p1", "p2"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_has_the_provider_fields_empty_until_a_provider_answered(error):
    assert error.code is None
    assert error.provider_message == ""
    assert error.request_id is None
    assert error.retry_after is None


def test_any_error_class_takes_what_the_provider_said():
    error = AuthError(
        "refused", code=40001, provider_message="invalid secret", request_id="r1", retry_after=5
    )
    assert (error.code, error.provider_message, error.request_id, error.retry_after) == (
        40001,
        "invalid secret",
        "r1",
        5,
    )
    assert error.retryable is False
    assert RateLimited("slow down", code=45009).retryable is True


def test_with_context_gives_a_new_error_and_leaves_the_original_as_it_was():
    original = TokenInvalid("errcode 42001: expired", code=42001, request_id="r1", attempts=2)
    copy = original.with_context(prefix="channel 'ops', send: ", suffix=" [part 2/3]")
    assert copy is not original
    assert type(copy) is TokenInvalid
    assert str(copy) == "channel 'ops', send: errcode 42001: expired [part 2/3]"
    assert copy.args == (str(copy),)
    assert (copy.code, copy.request_id, copy.attempts) == (42001, "r1", 2)
    assert str(original) == "errcode 42001: expired"
    assert original.args == ("errcode 42001: expired",)


def test_with_context_replaces_the_message_and_the_fields_it_is_given():
    original = ProviderError("errcode 93000: x", code=93000, retryable=True, attempts=1)
    copy = original.with_context(
        message="errcode 93000: the robot key is wrong", attempts=4, retry_after=30, request_id="q"
    )
    assert str(copy) == "errcode 93000: the robot key is wrong"
    assert (copy.attempts, copy.retry_after, copy.request_id) == (4, 30, "q")
    assert copy.retryable is True
    assert (original.attempts, original.retry_after, original.request_id) == (1, None, None)


def test_errors_with_their_own_constructor_arguments_copy_with_them():
    config = ConfigError([ConfigIssue("f.toml", "a", "a number")])
    assert config.with_context(prefix="loading: ").issues == config.issues
    duplicate = DuplicateKindError("k", "p1", "p2").with_context(suffix=".")
    assert (duplicate.kind, duplicate.first, duplicate.second) == ("k", "p1", "p2")
    assert TransportError("reset", sent=True).with_context(suffix="!").sent is True


def test_a_copy_raised_from_the_original_keeps_the_chain_to_the_cause():
    low = OSError("connection reset")
    with pytest.raises(TransportError) as caught:
        try:
            try:
                raise low
            except OSError as exc:
                raise TransportError("reset", sent=True) from exc
        except TransportError as exc:
            raise exc.with_context(prefix="channel 'ops': ") from exc
    assert str(caught.value) == "channel 'ops': reset"
    assert str(caught.value.__cause__) == "reset"
    assert caught.value.__cause__.__cause__ is low
