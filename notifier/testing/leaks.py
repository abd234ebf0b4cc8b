"""Looking for secrets where they must not be: log capture and the parts of a secret.

:class:`LogCapture` records every log record of every logger at DEBUG (the level where
request lines with query strings appear). :func:`secret_fragments` lists the strings that
count as a leak of one secret value, since a log line may show a webhook's path without
its host.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlsplit

__all__ = ["LogCapture", "secret_fragments"]


def secret_fragments(value: str) -> set[str]:
    """``value`` and, for a URL, the parts that are credentials on their own: the last
    path segment, query values and a password (parts under 8 characters are skipped;
    they are path words like ``hook``, not keys)."""
    fragments = {value}
    parts = urlsplit(value)
    if parts.scheme and parts.netloc:
        fragments.add(parts.path.rstrip("/").rsplit("/", 1)[-1])
        fragments.update(v for _, v in parse_qsl(parts.query))
        if parts.password:
            fragments.add(parts.password)
    return {f for f in fragments if len(f) >= 8 or f == value}


class LogCapture(logging.Handler):
    """Every record of every logger at DEBUG, formatted with its exception, while active.

    Use as a context manager; levels and handlers are restored on exit.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._saved: list[tuple[logging.Logger, int]] = []
        self._attached: list[logging.Logger] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self) -> Self:
        root = logging.getLogger()
        loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
        self._saved = [(logger, logger.level) for logger in [root, *loggers]]
        # Loggers that do not propagate never reach the root's handlers.
        self._attached = [root, *(lg for lg in loggers if not lg.propagate)]
        for logger, _ in self._saved:
            logger.setLevel(logging.DEBUG)
        for logger in self._attached:
            logger.addHandler(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for logger in self._attached:
            logger.removeHandler(self)
        for logger, level in self._saved:
            logger.setLevel(level)
