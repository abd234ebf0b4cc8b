"""Dead letters of ``[celery]``: deliveries that failed for good, kept in Redis.

A worker writes one (with the delivery's job, its last error and when it died) in the
same script that finishes the delivery (:data:`notifier.celery.scripts.FINISH`);
``notifier queue`` lists them, queues them again and deletes them through
:class:`DeadLetters`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from notifier.celery.state import SharedState, reaching


@attrs.frozen
class DeadLetter:
    """A delivery that failed for good, as ``notifier queue --dead`` lists it."""

    id: int
    channel: str
    attempts: int
    died_at: float
    error: str
    payload: dict[str, Any] = attrs.field(repr=False)

    @property
    def title(self) -> str:
        return str(self.payload.get("alert", {}).get("title", ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "attempts": self.attempts,
            "died_at": self.died_at,
            "last_error": self.error,
            "title": self.title,
        }


class DeadLetters:
    """The dead letters of one deployment's shared state."""

    def __init__(self, state: SharedState) -> None:
        self.state = state
        self._client = state.client
        self._letters = state.key("dead")
        self._index = state.key("dead", "index")

    def letters(self, channel: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with reaching(self.state.url):
            ids = self._client.zrange(self._index, 0, -1)
            raw = self._client.hmget(self._letters, ids) if ids else []
        letters = [_letter(int(i), r) for i, r in zip(ids, raw, strict=True) if r]
        if channel is not None:
            letters = [d for d in letters if d.channel == channel]
        return letters[:limit]

    def ids(self) -> list[int]:
        with reaching(self.state.url):
            return [int(i) for i in self._client.zrange(self._index, 0, -1)]

    def take(self, dead_id: int, keep: float) -> tuple[int, DeadLetter] | None:
        """Move a dead letter back into the queue: its new sequence number and record,
        or ``None`` when there is no such dead letter."""
        with reaching(self.state.url):
            raw = self._client.hget(self._letters, str(dead_id))
        if not raw:
            return None
        letter = _letter(dead_id, raw)
        fingerprint = str(letter.payload.get("alert", {}).get("fingerprint", ""))
        seq = self.state.requeue_dead(dead_id, letter.channel, fingerprint, keep)
        return (seq, letter) if seq else None

    def purge(self, ids: Iterable[int]) -> int:
        """Delete the dead letters ``ids``; how many there were."""
        gone = 0
        with reaching(self.state.url):
            for dead_id in ids:
                raw = self._client.hget(self._letters, str(dead_id))
                if not raw:
                    continue
                channel = _letter(dead_id, raw).channel
                pipe = self._client.pipeline(transaction=True)
                pipe.hdel(self._letters, str(dead_id))
                pipe.zrem(self._index, str(dead_id))
                pipe.hincrby(self.state.key("counts", channel), "dead", -1)
                pipe.execute()
                gone += 1
        return gone


def _letter(dead_id: int, raw: str) -> DeadLetter:
    record = json.loads(raw)
    payload = record.get("payload", {})
    return DeadLetter(
        id=dead_id,
        channel=str(payload.get("channel", "")),
        attempts=int(payload.get("attempt", 0)),
        died_at=float(record.get("died_at", 0.0)),
        error=str(record.get("error", "")),
        payload=payload,
    )
