"""Group commit: the deliveries of requests that arrive together, written in one transaction.

Each request thread hands its deliveries to :meth:`GroupCommit.write` and waits. When no
write is under way, the thread becomes the writer: it takes every request queued so far
and writes all their deliveries with one :meth:`OutboxDelivery.enqueue
<notifier.outbox.engine.OutboxDelivery.enqueue>` (one SQLite transaction), then hands
each request its own share of the result. Requests that arrive meanwhile queue up for
the next transaction, so under load a transaction carries as many requests as arrived
while the last one was written, and at rest a request is written at once, alone.

Nothing is answered before it is committed: :meth:`~GroupCommit.write` returns only once
the transaction holding the request's deliveries has committed (with the outbox's own
``synchronous`` setting), and when that transaction fails every request in it gets the
error: none of them was written, and each sender retries. What a transaction costs
whatever it holds (its fixed statements, the write lock, the commit) is about half of
writing one 10-alert notification alone; ten requests sharing it pay a tenth each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from notifier.errors import OutboxError, OutboxWriteError
from notifier.outbox.records import Enqueued, NewDelivery

__all__ = ["GroupCommit"]

# Deliveries one transaction takes at most: a storm of large notifications is written in
# several, so none holds the write lock (and the other processes sharing the file) long.
MAX_ROWS = 5000

Enqueue = Callable[[list[NewDelivery]], list[Enqueued]]


class _Request:
    __slots__ = ("done", "error", "items", "news", "written")

    def __init__(self, items: Sequence[NewDelivery]) -> None:
        self.items = items
        self.written: list[Enqueued] = []
        self.error: BaseException | None = None
        self.done = False
        # Released once there is news for this request's thread: its transaction ended,
        # or it is to write the next one. A lock per request rather than one condition for
        # all: a transaction wakes the threads it wrote for and the next writer, not all.
        self.news = threading.Lock()
        self.news.acquire()


class GroupCommit:
    """Writes the deliveries of concurrent requests together; see the module."""

    def __init__(self, enqueue: Enqueue, *, max_rows: int = MAX_ROWS) -> None:
        self._enqueue = enqueue
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a request queued (for watchers only)
        self._queued: list[_Request] = []
        self._writing = False
        self.transactions = 0  # written so far, for tests and the benchmark

    def write(self, items: Sequence[NewDelivery]) -> list[Enqueued]:
        """Write ``items`` in the next transaction; what the outbox made of each, in order.

        :raises OutboxWriteError: the transaction failed; nothing of ``items`` was written.
        """
        if not items:
            return []
        mine = _Request(items)
        with self._lock:
            self._queued.append(mine)
            self._arrived.notify_all()
            writer = not self._writing
            self._writing = True
        if not writer:
            mine.news.acquire()  # written, or this thread writes next
        while not mine.done:
            # This thread writes what is queued, oldest first, up to max_rows; its own
            # request may be left for the round after.
            with self._lock:
                batch = self._take()
            self._write(batch)
            with self._lock:
                for request in batch:
                    request.done = True
                    if request is not mine:
                        request.news.release()
                if not self._queued:
                    self._writing = False
                elif mine.done:  # the first request still queued writes next
                    self._queued[0].news.release()
        return _result(mine)

    def wait_for_queued(self, requests: int, timeout: float) -> bool:
        """Wait until ``requests`` requests are queued for the next transaction; whether
        they were within ``timeout`` seconds."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._queued) >= requests, timeout)

    def _take(self) -> list[_Request]:
        """The queued requests up to ``max_rows`` deliveries (at least the first)."""
        rows, taken = 0, 0
        for request in self._queued:
            if taken and rows + len(request.items) > self._max_rows:
                break
            rows += len(request.items)
            taken += 1
        batch, self._queued = self._queued[:taken], self._queued[taken:]
        return batch

    def _write(self, batch: list[_Request]) -> None:
        try:
            written = self._enqueue([item for request in batch for item in request.items])
        except BaseException as exc:
            for request in batch:
                request.error = exc
            return
        self.transactions += 1
        start = 0
        for request in batch:
            request.written = written[start : start + len(request.items)]
            start += len(request.items)


def _result(request: _Request) -> list[Enqueued]:
    error = request.error
    if error is None:
        return request.written
    # A fresh error per request: one exception object raised in several threads at once
    # would have its traceback rewritten under each of them.
    if isinstance(error, OutboxError):
        raise OutboxWriteError(str(error), retryable=error.retryable) from error
    raise RuntimeError(f"writing the deliveries failed: {error!r}") from error
