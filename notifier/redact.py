"""Keeping secrets out of logs, errors, reprs and receipts.

Secrets enter the process in two ways: configuration options (webhook keys, app secrets,
passwords) and provider answers (access tokens). Both are registered here the moment they
are seen; :func:`redact` then replaces every registered value, and every value of a
well-known secret-bearing URL parameter, with ``***``. A logging filter applies it to
records of the loggers that print request lines (urllib3 logs the full URL, query string
included, at DEBUG).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

MASK = "***"

# Query parameters and JSON fields whose values are credentials wherever they appear.
_PARAM_NAMES = "access_token|corpsecret|secret|key|sign|token|app_secret|bk_app_secret|password"
_PARAM_RE = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_PARAM_NAMES})=([^&\s'\"#]+)")
_JSON_RE = re.compile(rf"(?i)(\"(?:{_PARAM_NAMES})\"\s*:\s*\")([^\"]*)(\")")

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Values this short would redact ordinary words; real credentials are longer.
_MIN_LEN = 4


class Secret:
    """A string that never shows itself in ``repr`` or ``str``.

    Call :meth:`reveal` at the one place the value is really needed (a header, a query
    parameter). Creating one registers the value for :func:`redact`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)
        register(self._value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def reveal(value: str | Secret | None) -> str | None:
    """The plain value of a secret or a plain string (``None`` stays ``None``)."""
    return value.reveal() if isinstance(value, Secret) else value


def register(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` hides it from now on."""
    global _pattern
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        # Longest first so a secret containing another is masked whole.
        alternatives = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def redact(text: str) -> str:
    """``text`` with every known secret and secret-bearing parameter masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _PARAM_RE.sub(rf"\1={MASK}", text)
    return _JSON_RE.sub(rf"\1{MASK}\3", text)


def scrub_exception(exc: BaseException) -> BaseException:
    """Redact the messages of ``exc`` and its chain in place, and return it.

    ``requests`` puts the full URL in its exception text; scrubbing before chaining
    with ``raise ... from`` keeps the cause useful without carrying the secret.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(_redact_arg(a) for a in current.args)
        current = current.__cause__ or current.__context__
    return exc


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    if isinstance(arg, BaseException):
        return scrub_exception(arg)
    return redact(str(arg)) if arg is not None and not isinstance(arg, int | float) else arg


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact` applied; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
            record.exc_text = None
        return True


# Loggers that print URLs or request data; the filter sits on each logger itself, so it
# applies whatever handlers the application installs.
_NOISY_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "urllib3.poolmanager",
    "requests",
    "notifier",
)
_installed = False


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to every logger that may print a secret (idempotent)."""
    global _installed
    if _installed:
        return
    flt = RedactingFilter()
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).addFilter(flt)
    _installed = True
