"""One attempt at a delivery, as a value: what the channel's send came to.

A channel send (:mod:`notifier.lanes`) produces an :class:`Attempt`; callers read its
typed fields (``retryable``, ``rate_limited``, ``retry_after``) to decide what happens
next, and turn it into the :class:`~notifier.models.Receipt` users see only at the edge:
the dispatcher for a direct delivery, the outbox for a stored one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from notifier.models import Outcome, Receipt

#: What a failure that nothing will retry says about retries.
NO_RETRIES = "configure [outbox] for retries (docs/outbox.md)"


@attrs.frozen
class Attempt:
    """One try of one alert on one channel.

    :param ok: the provider accepted the message.
    :param attempts: HTTP requests made, the channel's own retries included.
    :param error: why it failed, redacted; ``None`` when ``ok``.
    :param retryable: a later try may succeed (a timeout, a busy provider, a plugin bug).
    :param rate_limited: the provider refused for its rate limit: pacing, not failure.
    :param retry_after: seconds the provider asked to wait, when it said.
    :param code: the provider's error code; ``request_id``: its id of the request.
    :param parts: messages the alert was sent as (a long one is split).
    :param details: the provider facts the channel kept (``SendResult.details``), kept
        in the receipt's ``details`` under the facts above.
    """

    channel: str
    ok: bool
    kind: str = ""
    fingerprint: str = ""
    attempts: int = 0
    latency_ms: float = 0.0
    message_id: str | None = None
    error: str | None = None
    retryable: bool = False
    rate_limited: bool = False
    retry_after: float | None = None
    code: int | str | None = None
    request_id: str | None = None
    parts: int = 1
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def receipt(self, *, retried: bool = True, extra: Mapping[str, Any] | None = None) -> Receipt:
        """The receipt users get for this attempt.

        :param retried: something (the outbox) retries a retryable failure; when not,
            the error says how to get retries rather than let "busy" read as if someone
            would.
        :param extra: details added to a delivered receipt's (the outbox's delivery id
            and key): one receipt built, rather than one built and then copied.
        """
        if self.ok:
            details = dict(self.details)
            if self.parts > 1:
                details["parts"] = self.parts
            if extra:
                details.update(extra)
            return Receipt(
                channel=self.channel,
                outcome=Outcome.DELIVERED,
                attempts=self.attempts,
                latency_ms=self.latency_ms,
                message_id=self.message_id,
                fingerprint=self.fingerprint,
                kind=self.kind,
                details=details,
            )
        facts = dict(self.details)
        if self.code is not None:
            facts["code"] = self.code
        if self.request_id is not None:
            facts["request_id"] = self.request_id
        facts["retryable"] = self.retryable
        if self.rate_limited:
            facts["rate_limited"] = True
        if self.retry_after is not None:
            facts["retry_after"] = self.retry_after
        error = self.error or "delivery failed"
        if self.retryable and not retried:
            error += f"; not retried: {NO_RETRIES}"
        return Receipt(
            channel=self.channel,
            outcome=Outcome.FAILED,
            attempts=self.attempts,
            latency_ms=self.latency_ms,
            error=error,
            fingerprint=self.fingerprint,
            kind=self.kind,
            details=facts,
        )

    @classmethod
    def from_receipt(cls, receipt: Receipt) -> Attempt:
        """The attempt a receipt tells of, for deliver functions that return receipts
        (an :class:`~notifier.outbox.OutboxDelivery` built on a plain function).

        A failure without ``retryable`` in its details is read as permanent, the safe
        reading for an error nobody classified.
        """
        details = dict(receipt.details or {})
        common: dict[str, Any] = {
            "kind": receipt.kind,
            "fingerprint": receipt.fingerprint,
            "attempts": receipt.attempts,
            "latency_ms": receipt.latency_ms,
        }
        if receipt.ok:
            parts = details.pop("parts", 1)
            return cls(
                receipt.channel,
                True,
                message_id=receipt.message_id,
                parts=parts if isinstance(parts, int) else 1,
                details=details,
                **common,
            )
        retry_after = details.pop("retry_after", None)
        try:
            retry_after = None if retry_after is None else max(float(retry_after), 0.0)
        except (TypeError, ValueError):
            retry_after = None
        rate_limited = bool(details.pop("rate_limited", False))
        retryable = bool(details.pop("retryable", False)) or rate_limited
        return cls(
            receipt.channel,
            False,
            error=receipt.error,
            retryable=retryable,
            rate_limited=rate_limited,
            retry_after=retry_after,
            code=details.pop("code", None),
            request_id=details.pop("request_id", None),
            details=details,
            **common,
        )
