"""Option values from a TOML table: environment references, type checks, paths, secrets.

Shared by channel options, ``[dispatcher]`` and ``[outbox]``: any value may be
``{ env = "NAME" }`` (optionally with ``default``); text from the environment converts
to the option's type; a relative path option is resolved against the config file's
directory; a secret option becomes a :class:`~notifier.redact.Secret`. Problems are
collected in :class:`Issues` so a file's every error is reported at once.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from notifier.errors import ConfigError, ConfigIssue
from notifier.kinds import Option
from notifier.redact import Secret


class Issues:
    """Collects problems so validation can report all of them at once."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.found: list[ConfigIssue] = []

    def add(self, path: str, expected: str) -> None:
        self.found.append(ConfigIssue(self.file, path, expected))

    def raise_if_any(self) -> None:
        if self.found:
            raise ConfigError(self.found)


def option_values(
    table: Any,
    schema: tuple[Option, ...],
    where: str,
    issues: Issues,
    env: Mapping[str, str] | None,
    base_dir: Path,
    *,
    owner: str = "",
    also_accepted: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``table`` checked against ``schema``: env references resolved, types checked,
    relative paths resolved against ``base_dir``, secrets wrapped, defaults filled in.
    Every problem goes to ``issues``; what is valid is returned."""
    if not isinstance(table, Mapping):
        issues.add(where, "a table")
        return {}
    known = {opt.name: opt for opt in schema}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        opt = known.get(key)
        if opt is None:
            accepted = [*sorted(known), *also_accepted]
            hint = difflib.get_close_matches(key, accepted, n=1)
            issues.add(
                f"{where}.{key}",
                f"no such option for {owner or f'[{where}]'}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; accepted: {', '.join(accepted)}",
            )
            continue
        value = resolve(raw, opt, f"{where}.{key}", issues, env)
        if value is not INVALID:
            values[key] = _finish(value, opt, base_dir)
    for opt in schema:
        if opt.name in values or opt.name in table:  # present but invalid: reported above
            continue
        if opt.required:
            issues.add(f"{where}.{opt.name}", f"required: {opt.expected}" + _help(opt))
        else:
            values[opt.name] = opt.default
    return values


def _help(opt: Option) -> str:
    return f" ({opt.help})" if opt.help else ""


INVALID = object()


def is_env_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and "env" in value and set(value) <= {"env", "default"}


def resolve(raw: Any, opt: Option, path: str, issues: Issues, env: Mapping[str, str] | None) -> Any:
    env = os.environ if env is None else env
    value = raw
    if is_env_ref(raw):
        name = raw["env"]
        if not isinstance(name, str) or not name:
            issues.add(f"{path}.env", "the name of an environment variable")
            return INVALID
        if name in env:
            value = from_text(env[name], opt)
        elif "default" in raw:
            value = raw["default"]
            if isinstance(value, str):  # a default is written as the variable would be
                value = from_text(value, opt)
        else:
            issues.add(path, f"environment variable {name} is not set (expected {opt.expected})")
            return INVALID
        if value is INVALID:
            issues.add(path, f"environment variable {name} to hold {opt.expected}")
            return INVALID
    elif opt.type is dict and isinstance(raw, Mapping):
        value = {}
        for key, item in raw.items():
            if is_env_ref(item):
                item = resolve(item, Option(key), f"{path}.{key}", issues, env)
                if item is INVALID:
                    return INVALID
            value[key] = item
    problem = opt.check(value)
    if problem:
        issues.add(path, problem + _help(opt))
        return INVALID
    return value


def from_text(text: str, opt: Option) -> Any:
    """``text`` (an environment variable's value) as ``opt``'s type, or :data:`INVALID`."""
    if opt.type is str:
        return text
    try:
        if opt.type is int:
            return int(text)
        if opt.type is float:
            return float(text)
    except ValueError:
        return INVALID
    if opt.type is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        return INVALID
    if opt.type is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return INVALID


def _finish(value: Any, opt: Option, base_dir: Path) -> Any:
    if opt.type is list:
        value = [str(v) for v in value]
    elif opt.type is float:
        value = float(value)
    if opt.path and isinstance(value, str) and not Path(value).is_absolute():
        value = str(base_dir / value)
    if opt.secret and isinstance(value, str):
        value = Secret(value)
    elif opt.secret and isinstance(value, dict):
        value = {k: Secret(v) for k, v in value.items()}
    return value
