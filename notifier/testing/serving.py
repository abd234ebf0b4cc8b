"""Running a fake provider from the shell: ``python -m notifier_<name>.testing``.

Every shipped fake serves this way until interrupted, printing its address first and
then a configuration that routes every alert to a channel pointed at it, so an operator
can try ``notifier send`` against it without credentials or network::

    $ python -m notifier_dingtalk.testing --config fake.toml
    FakeDingTalk serving at http://127.0.0.1:41234/
    ...
    $ notifier send --config fake.toml --title "Disk almost full"   # in another shell

A plugin's fake does the same with :func:`serve_from_shell` in its ``testing`` module.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import attrs

__all__ = ["Served", "serve_from_shell"]

Fake = TypeVar("Fake", bound=AbstractContextManager[Any])


@attrs.frozen
class Served:
    """What a running fake tells an operator.

    :param address: where it listens (``http://127.0.0.1:PORT/``, ``smtp://...``).
    :param channel: the name of the channel in ``table``.
    :param table: a ``[channels.<channel>]`` TOML table pointed at the fake.
    """

    address: str
    channel: str
    table: str

    @classmethod
    def for_channel(
        cls, address: str, channel: str, options: Mapping[str, str | int], *, preface: str = ""
    ) -> Served:
        """``options`` written as the ``[channels.<channel>]`` table, after ``preface``
        (comment lines for the operator, each ending in a newline)."""
        lines = [
            f"{key} = {json.dumps(value, ensure_ascii=False)}\n" for key, value in options.items()
        ]
        return cls(address, channel, f"{preface}[channels.{channel}]\n{''.join(lines)}")

    @property
    def config(self) -> str:
        """A whole configuration: the channel, and a default route to it."""
        return f'{self.table.rstrip()}\n\n[[routes]]\nchannels = ["{self.channel}"]\n'


def serve_from_shell(
    prog: str,
    make: Callable[[], Fake],
    describe: Callable[[Fake], Served],
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Start ``make()``, print its address line and a configuration pointed at it, and
    serve until SIGINT or SIGTERM (or ``stop`` is set). Returns the exit status.

    The address line comes first and alone (``<Fake> serving at <address>``), so a script
    can read one line and go on; with ``--config FILE`` the configuration is written to
    FILE before that line is printed.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve this fake provider on 127.0.0.1 until interrupted, printing "
        "its address and a configuration that routes every alert to it.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="also write that configuration to FILE (overwritten)"
    )
    args = parser.parse_args(argv)
    out = out or sys.stdout
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        return _serve(make, describe, args.config, out, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve(
    make: Callable[[], Fake],
    describe: Callable[[Fake], Served],
    config: str | None,
    out: TextIO,
    stop: threading.Event,
) -> int:
    with make() as fake:
        served = describe(fake)
        if config:
            Path(config).write_text(served.config, encoding="utf-8")
        out.write(f"{type(fake).__name__} serving at {served.address}\n")
        where = f" (written to {config})" if config else ""
        out.write(f"\n# A configuration that sends every alert to it{where}:\n")
        out.write(served.config)
        out.write("\n# Ctrl-C stops the server.\n")
        out.flush()
        # A bounded wait: signal handlers run between waits even where a lock's wait
        # cannot be interrupted.
        while not stop.wait(0.5):
            pass
    return 0
