"""Keeping secrets out of logs, errors, reprs and receipts.

Secrets enter the process in two ways: configuration options (webhook keys, app secrets,
passwords, header values) and provider answers (access tokens). Both are registered here
the moment they are seen; :func:`redact` then replaces them, and every value of a
well-known secret-bearing URL parameter, with ``***``. A logging filter applies it to
records of the loggers that print request lines (urllib3 logs the full URL, query string
included, at DEBUG).

Where a registered value is masked depends on how it looks. A *distinctive* value (16
characters or more, or 8 or more that are not all letters: tokens, keys, URLs) is masked
wherever it occurs, even inside other text, since a leaked credential costs more than an
over-masked word. A shorter or plain-word value (a robot key ``disk``, a webhook path
``alerts``) would also match ordinary words, so it is masked only where it stands as a
value: a URL path segment, query value or password, the value of a ``name=value`` pair,
a whole quoted string (a JSON field, a header in a ``repr``), or the credential after
``Bearer``/``Basic``/``Token``. Values under 4 characters are not searched for at all.
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
# Distinctive values, masked wherever they occur.
_pattern: re.Pattern[str] | None = None
# Short or plain-word values, masked only in value positions.
_value_pattern: re.Pattern[str] | None = None

# Shorter values are not credentials; searching for them would only mangle text.
_MIN_LEN = 4
# A value this long, or this short one that is not all letters, cannot be mistaken for a
# word of prose, so it is masked everywhere.
_ANYWHERE_LEN = 16
_ANYWHERE_MIXED_LEN = 8
# Characters that continue a value: a match followed by one is part of a longer value.
_VALUE_CHAR = r"[\w.~%+-]"


class Secret:
    """A string that never shows itself in ``repr`` or ``str``.

    Call :meth:`reveal` at the one place the value is really needed (a header, a query
    parameter). Creating one registers the value for :func:`redact`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)
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


def is_distinctive(value: str) -> bool:
    """Whether ``value`` is masked wherever it occurs rather than only as a value: it is
    long, or not a plain word (see the module documentation)."""
    return len(value) >= _ANYWHERE_LEN or (
        len(value) >= _ANYWHERE_MIXED_LEN and not value.isalpha()
    )


def register(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` hides it from now on."""
    global _pattern, _value_pattern
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        # Longest first so a secret containing another is masked whole.
        alternatives = sorted(_values, key=len, reverse=True)
        anywhere = [re.escape(v) for v in alternatives if is_distinctive(v)]
        as_value = "|".join(re.escape(v) for v in alternatives if not is_distinctive(v))
        _pattern = re.compile("|".join(anywhere)) if anywhere else None
        _value_pattern = _compile_value_positions(as_value) if as_value else None


def _compile_value_positions(alternatives: str) -> re.Pattern[str]:
    s = f"(?:{alternatives})"
    return re.compile(
        "|".join(
            (
                # A URL path segment, query or fragment value, or a name=value value.
                rf"(?<=[/=?&#]){s}(?!{_VALUE_CHAR})",
                # A URL's password: scheme://user:PASSWORD@host
                rf"(?<=:){s}(?=@)",
                # A whole quoted string: a JSON field, a header value in a repr.
                rf"(?<=\"){s}(?=\")",
                rf"(?<='){s}(?=')",
                # An HTTP credential after its scheme.
                rf"(?<=\bBearer ){s}(?!{_VALUE_CHAR})",
                rf"(?<=\bBasic ){s}(?!{_VALUE_CHAR})",
                rf"(?<=\bToken ){s}(?!{_VALUE_CHAR})",
            )
        )
    )


def redact(text: str) -> str:
    """``text`` with every known secret and secret-bearing parameter masked."""
    if not text:
        return text
    pattern, value_pattern = _pattern, _value_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if value_pattern is not None:
        text = value_pattern.sub(MASK, text)
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
# applies whatever handlers the application installs. A logger's filters do not see its
# children's records, so every ``notifier.*`` logger (plugins' ones included) gets it too.
_NOISY_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "urllib3.poolmanager",
    "requests",
    "notifier",
    "notifier.dispatcher",
    "notifier.lanes",
    "notifier.http",
    "notifier.outbox",
    "notifier.plugins",
)
_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to every logger that may print a secret: the HTTP
    libraries' and every ``notifier.*`` logger that exists so far (idempotent; called
    again when a dispatcher or an HTTP client is built, after plugins made theirs)."""
    names = [*_NOISY_LOGGERS]
    names += [n for n in list(logging.root.manager.loggerDict) if n.startswith("notifier.")]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
