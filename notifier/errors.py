"""One rooted error tree.

Every error the framework raises derives from :class:`NotifierError` and carries data the
caller reads instead of matching message strings: above all ``retryable``, which the
dispatcher and the outbox use to decide between "try again later" and "dead letter".
Low-level exceptions (``requests``, ``sqlite3``, ``tomllib``) are translated at the
boundary where they occur, with ``raise ... from``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import attrs


class NotifierError(Exception):
    """Base of every error raised by notifier and its plugins.

    Its fields are declared here, with defaults, so every caller reads them directly
    (``error.code``) whatever the subclass. The provider fields are set where an answer
    from a provider (or an SMTP server) explains the failure, and stay ``None``/``""``
    otherwise.

    :param message: a one-line, secret-free description.
    :param retryable: whether trying the same operation again later may succeed.
    :param attempts: how many requests the failed operation made (for receipts).
    :param code: the provider's error code (``errcode``, ``code``, HTTP status, SMTP
        reply code).
    :param provider_message: the provider's own error text, redacted.
    :param request_id: the provider's or gateway's id for the request, for support.
    :param retry_after: seconds the provider asked us to wait before trying again.

    An error is not changed once raised: code that knows more (which channel, which part)
    raises :meth:`with_context`'s copy ``from`` the original.
    """

    message: str
    retryable: bool = False
    attempts: int = 1
    code: int | str | None = None
    provider_message: str = ""
    request_id: str | None = None
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        attempts: int = 1,
        code: int | str | None = None,
        provider_message: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.attempts = attempts
        self.code = code
        self.provider_message = provider_message
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def with_context(
        self,
        *,
        prefix: str = "",
        suffix: str = "",
        message: str | None = None,
        attempts: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> Self:
        """A copy of this error (same class, same fields) with more context; raise it
        with ``raise exc.with_context(...) from exc``.

        :param prefix: put before the message, e.g. ``"channel 'ops', send: "``.
        :param suffix: put after the message, e.g. ``" (after 2 of 3 parts)"``.
        :param message: replaces the message (``prefix`` and ``suffix`` still apply).
        :param attempts: replaces ``attempts``, e.g. to count a whole multi-part send.
        :param retry_after: replaces ``retry_after``.
        :param request_id: replaces ``request_id``.

        ``None`` keeps a field as it is. The copy is built without calling the class's
        ``__init__``, so subclasses with their own constructor arguments copy too.
        """
        cls = type(self)
        copy = cls.__new__(cls)
        copy.__dict__.update(self.__dict__)
        copy.message = prefix + (self.message if message is None else message) + suffix
        copy.args = (copy.message,)
        if attempts is not None:
            copy.attempts = attempts
        if retry_after is not None:
            copy.retry_after = retry_after
        if request_id is not None:
            copy.request_id = request_id
        return copy


@attrs.frozen
class ConfigIssue:
    """One problem found in a configuration file."""

    file: str
    path: str
    expected: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.expected}"


class ConfigError(NotifierError):
    """The configuration is missing or invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        lines = [str(i) for i in self.issues]
        head = (
            lines[0]
            if len(lines) == 1
            else f"{len(lines)} configuration errors:\n  " + ("\n  ".join(lines))
        )
        super().__init__(head, retryable=False)


class InvalidAlert(NotifierError, ValueError):
    """Data given to :meth:`~notifier.models.Alert.from_dict` is not a valid alert.

    Also a :class:`ValueError`, so callers that caught that before keep working.
    """


class PluginError(NotifierError):
    """A plugin could not be loaded, or plugins conflict."""


class DuplicateKindError(PluginError):
    """Two plugins claim the same channel kind name."""

    def __init__(self, kind: str, first: str, second: str) -> None:
        self.kind, self.first, self.second = kind, first, second
        super().__init__(
            f"channel kind {kind!r} is provided by both {first!r} and {second!r}; "
            f"uninstall or disable one (NOTIFIER_DISABLE_PLUGINS)"
        )


class UnsupportedOperation(NotifierError):
    """The channel's kind does not implement the requested operation."""


class ChannelError(NotifierError):
    """A delivery failed for a reason specific to one channel."""


class InvalidRequest(ChannelError):
    """The channel refused the request before sending anything: what the caller asked
    for is invalid (a group of one member, a malformed chat id). A usage error; never
    retryable."""

    retryable = False


class AuthError(ChannelError):
    """Credentials were rejected or a token could not be obtained."""


class RateLimited(ChannelError):
    """The provider (or our own pacing) refused the call for now.

    Its ``retry_after`` is the wait before the next attempt, when known.
    """

    retryable = True


class ProviderError(ChannelError):
    """The provider answered with an error envelope.

    Its ``code`` and ``provider_message`` say what the provider answered.
    """


class TokenInvalid(ProviderError):
    """The provider says the cached access token is invalid or expired."""


class TransportError(ChannelError):
    """The request failed below HTTP: connection refused or reset, timeout, TLS.

    :param sent: whether the request may have reached the server. A non-idempotent call
        is retried only when this is false.
    """

    def __init__(
        self, message: str, *, sent: bool, retryable: bool = True, attempts: int = 1
    ) -> None:
        super().__init__(message, retryable=retryable, attempts=attempts)
        self.sent = sent


class DeliveryTimeout(ChannelError):
    """A channel did not finish within the dispatcher's per-delivery timeout."""

    retryable = True


class OutboxError(NotifierError):
    """The durable outbox cannot be opened or written (corrupt, locked, unwritable)."""


class OutboxWriteError(OutboxError):
    """Deliveries could not be written to the outbox, so none of them was written or tried.

    The dispatcher then attempts them directly; their receipts say they are not durable.
    """


class QueueUnavailable(NotifierError):
    """The task broker or the shared Redis state (``[celery]``) cannot be reached.

    Nothing was queued by the call that raised it; the same call may succeed once the
    service answers again.
    """

    retryable = True
