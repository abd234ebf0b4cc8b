"""For every test, the core's and the plugins': ``notifier.cli.main.main`` sets up logging
for a whole process (a handler on the root logger writing to that moment's stderr, which
under ``capsys`` is a stream closed after the test); give the next test the logging it had."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    loggers = [logging.getLogger(), logging.getLogger("notifier.deliveries")]
    saved = [(lg, lg.handlers[:], lg.level) for lg in loggers]
    yield
    for logger, handlers, level in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
