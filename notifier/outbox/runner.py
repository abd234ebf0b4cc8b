"""Where deliveries run: one small seam, so the same deliveries can run elsewhere.

The outbox hands each claim to a :class:`Runner` as
``runner.submit(fn, *args)`` and waits on the returned future. The embedded default,
:class:`ThreadPoolRunner`, runs claims on threads of this process. Nothing else in the
outbox knows how a claim is run; ``docs/outbox.md`` shows how a Celery runner would plug
in without changing channels or configuration.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Runner(Protocol):
    """Runs submitted work somewhere and reports through a ``Future``."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class ThreadPoolRunner:
    """Runs work on a pool of ``max_workers`` threads in this process (the default)."""

    def __init__(self, max_workers: int = 4, *, name: str = "notifier-outbox") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


class InlineRunner:
    """Runs work at once in the caller's thread: deterministic, for tests and tools."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # the future carries it to whoever waits
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        return None


def worker_id() -> str:
    """``host:pid:token``: unique per engine, and says which process holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_alive(owner: str) -> bool:
    """Whether the worker named ``owner`` may still be running.

    Only a process on this host can be checked; anything else counts as alive and its
    leases simply expire.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or sys.platform == "win32":
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
