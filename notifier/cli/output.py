"""Terminal output: aligned tables and a progress bar that only a terminal sees.

Cells and JSON may hold alert text from anyone: control characters are shown as escapes
(:mod:`notifier.terminal`), never sent to the terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from notifier.terminal import visible_json, visible_line

# Where print_json writes while json_stdout() holds stdout for it.
_json_out: TextIO | None = None


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    cells = [[visible_line(str(h)) for h in headers]] + [
        ["" if c is None else visible_line(str(c)) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write(line.rstrip() + "\n")


def print_json(data: Any, out: TextIO | None = None) -> None:
    text = visible_json(json.dumps(data, ensure_ascii=False, indent=2))
    (out or _json_out or sys.stdout).write(text + "\n")


@contextlib.contextmanager
def json_stdout() -> Iterator[None]:
    """Keep stdout for :func:`print_json` alone while the block runs.

    Anything else written to stdout meanwhile (a console channel printing an alert, a
    plugin's ``print``) goes to stderr, so ``notifier ... --json | jq`` always reads JSON.
    """
    global _json_out
    _json_out = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        _json_out = None


class Progress:
    """``[#####.....] 120/500 alerts`` redrawn in place on stderr, when it is a terminal."""

    def __init__(self, total: int, what: str = "alerts", out: TextIO | None = None) -> None:
        self.total, self.what = total, what
        self.out = out or sys.stderr
        self.enabled = total > 1 and self.out.isatty()
        self.done = 0

    def advance(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        self.out.write(f"\r[{bar}] {self.done}/{self.total} {self.what}")
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()
