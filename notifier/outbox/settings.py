"""The ``[outbox]`` configuration table, validated into :class:`OutboxSettings`.

Each key is declared as a :class:`~notifier.kinds.Option`, so problems read the same as
a channel's ("outbox.max_attempts: expected an integer >= 1, got string 'ten'") and all
of them are reported at once.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from notifier.errors import ConfigError, ConfigIssue
from notifier.filemodes import DIR_MODE, FILE_MODE, mode_problem
from notifier.kinds import Option
from notifier.limits import DAY, HOUR, MAX_WORKERS, YEAR
from notifier.outbox.policy import Backoff, CircuitBreaker
from notifier.values import INVALID, from_text

if TYPE_CHECKING:
    from notifier.config import Config

# -- where the file lives when the configuration does not say --------------------------

MEMORY = ":memory:"
FILENAME = "outbox.db"


def data_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The user's data directory for notifier, by the platform's convention.

    Linux and other Unixes follow the XDG base directory spec (``$XDG_DATA_HOME``, else
    ``~/.local/share``); macOS uses ``~/Library/Application Support``; Windows uses
    ``%LOCALAPPDATA%``.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(local) / "notifier"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "notifier"
    xdg = env.get("XDG_DATA_HOME")
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base / "notifier"


def default_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The outbox file used when ``[outbox] path`` is not set."""
    return str(data_dir(env, platform) / FILENAME)


def resolve(path: str | os.PathLike[str] | None) -> str:
    """``path`` with ``~`` expanded; the default when empty; ``:memory:`` unchanged."""
    if path is None or str(path) == "":
        return default_path()
    text = os.fspath(path)
    return text if text == MEMORY else os.path.expanduser(text)


# -- the [outbox] table ------------------------------------------------------------------


OPTIONS: tuple[Option, ...] = (
    Option("enabled", bool, default=True, help="write every delivery to the outbox first"),
    Option("path", str, default="", help='the SQLite file; ":memory:" keeps it in memory'),
    Option(
        "max_attempts",
        int,
        default=30,
        minimum=1,
        maximum=1_000_000,
        help="attempts before dead letter",
    ),
    Option(
        "max_age", float, default=DAY, minimum=1, maximum=YEAR, help="seconds before dead letter"
    ),
    Option(
        "backoff_initial", float, default=1.0, minimum=0.001, maximum=DAY, help="first retry delay"
    ),
    Option(
        "backoff_max", float, default=600.0, minimum=0.001, maximum=DAY, help="longest retry delay"
    ),
    Option(
        "dedup_window", float, default=300.0, minimum=0, maximum=30 * DAY, help="0 turns dedup off"
    ),
    Option(
        "breaker_threshold",
        int,
        default=5,
        minimum=0,
        maximum=10_000,
        help="failures in a row; 0: off",
    ),
    Option("breaker_cooldown", float, default=5.0, minimum=0.001, maximum=DAY, help="seconds open"),
    Option(
        "lease", float, default=10.0, minimum=1, maximum=DAY, help="seconds a worker holds a claim"
    ),
    Option(
        "batch_size",
        int,
        default=100,
        minimum=1,
        maximum=10_000,
        help="deliveries per channel per claim",
    ),
    Option(
        "workers", int, default=4, minimum=1, maximum=MAX_WORKERS, help="channels delivered at once"
    ),
    Option("keep_delivered", float, default=DAY, minimum=0, maximum=YEAR, help="seconds kept"),
    Option(
        "poll_interval", float, default=1.0, minimum=0.01, maximum=HOUR, help="worker's idle poll"
    ),
    Option(
        "busy_timeout", float, default=5.0, minimum=0, maximum=HOUR, help="wait for other writers"
    ),
    Option("synchronous", str, default="normal", choices=("normal", "full")),
    Option(
        "group_commit",
        bool,
        default=True,
        help="record a send with the next write (within 20 ms); false: before returning",
    ),
    Option("file_mode", default=FILE_MODE, help="permissions of a new file, in octal"),
    Option("dir_mode", default=DIR_MODE, help="permissions of new directories, in octal"),
)
_BY_NAME = {o.name: o for o in OPTIONS}


def _coerce(option: Option, value: Any) -> Any:
    """A number or flag given as text (``{ env = "NAME" }`` values are text) as its type;
    anything else as it is, for the check to report."""
    if not isinstance(value, str) or option.type is str or not value.strip():
        return value
    typed = from_text(value, option)
    return value if typed is INVALID else typed


def _check(option: Option, value: Any) -> str | None:
    problem = option.check(value)
    if problem is not None:
        return problem
    if option.name == "path" and "\0" in value:
        return "expected a file path, got a string with a NUL character"
    if option.name in ("file_mode", "dir_mode"):
        return mode_problem(value)
    return None


@attrs.frozen
class OutboxSettings:
    """Validated ``[outbox]`` settings; every default is usable as it is."""

    enabled: bool = True
    path: str = attrs.field(default="", converter=resolve)
    max_attempts: int = 30
    max_age: float = 86_400.0
    backoff_initial: float = 1.0
    backoff_max: float = 600.0
    dedup_window: float = 300.0
    breaker_threshold: int = 5
    # Short: a probe every few seconds finds a provider back within seconds.
    breaker_cooldown: float = 5.0
    # Short, and renewed while a worker delivers: a killed worker's work moves on soon.
    lease: float = 10.0
    batch_size: int = 100
    workers: int = 4
    keep_delivered: float = 86_400.0
    poll_interval: float = 1.0
    busy_timeout: float = 5.0
    synchronous: str = "normal"
    group_commit: bool = True
    file_mode: str = FILE_MODE
    dir_mode: str = DIR_MODE

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any] | None, *, file: str = "<inline>"
    ) -> OutboxSettings:
        """Settings from a parsed ``[outbox]`` table.

        :raises ConfigError: listing every unknown key and every value of the wrong type
            or range.
        """
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ConfigError([ConfigIssue(file, "outbox", "expected a table of settings")])
        issues = []
        values: dict[str, Any] = {}
        for key, value in table.items():
            option = _BY_NAME.get(key) if isinstance(key, str) else None
            if option is None:
                hint = difflib.get_close_matches(str(key), _BY_NAME, n=1)
                expected = "no such key in [outbox]"
                expected += f" (did you mean {hint[0]!r}?)" if hint else ""
                expected += f"; accepted: {', '.join(sorted(_BY_NAME))}"
                issues.append(ConfigIssue(file, f"outbox.{key}", expected))
                continue
            value = _coerce(option, value)
            problem = _check(option, value)
            if problem is not None:
                issues.append(ConfigIssue(file, f"outbox.{key}", problem))
            else:
                values[key] = float(value) if option.type is float else value
        low, high = values.get("backoff_initial", 1.0), values.get("backoff_max", 600.0)
        if high < low:  # blame the key the file set
            if "backoff_max" in values:
                expected = f"expected a number >= backoff_initial ({low:g}), got {high:g}"
                issues.append(ConfigIssue(file, "outbox.backoff_max", expected))
            else:
                expected = f"expected a number <= backoff_max ({high:g}), got {low:g}"
                issues.append(ConfigIssue(file, "outbox.backoff_initial", expected))
        if issues:
            raise ConfigError(issues)
        return cls(**values)

    @property
    def memory(self) -> bool:
        return self.path == ":memory:"

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial, max(self.backoff_max, self.backoff_initial))

    @property
    def breaker(self) -> CircuitBreaker | None:
        if self.breaker_threshold == 0:
            return None
        return CircuitBreaker(self.breaker_threshold, self.breaker_cooldown)


def settings_from_config(
    config: Config, override: OutboxSettings | bool | None = None
) -> OutboxSettings | None:
    """The outbox settings to use, or ``None`` to deliver directly.

    :param override: ``False`` turns the outbox off, an :class:`OutboxSettings` replaces
        the file's; ``None`` (and ``True``) follow the file: an ``[outbox]`` table, even
        an empty one, turns the outbox on unless it says ``enabled = false``.
    :raises ConfigError: the ``[outbox]`` table has unknown keys or bad values.
    """
    if override is False:
        return None
    if isinstance(override, OutboxSettings):
        return override if override.enabled else None
    table = config.outbox
    if table is None and override is None:
        return None
    settings = OutboxSettings.from_table(table, file=config.file)
    return settings if settings.enabled else None
