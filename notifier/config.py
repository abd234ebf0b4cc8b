"""Per-deployment configuration: one TOML file, validated all at once.

The file is found from ``--config`` or ``NOTIFIER_CONFIG``. Top-level tables:
``[channels.<name>]`` (``kind`` plus that kind's options), ``[[routes]]``,
``[dispatcher]`` and ``[outbox]``. Any option may read an environment variable with
``{ env = "NAME" }`` (optionally ``default = "..."``). Every problem is collected with its
file, key path and what was expected, then raised together as one
:class:`~notifier.errors.ConfigError`; ``docs/configuration.md`` is the reference.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from notifier.errors import ConfigError, ConfigIssue
from notifier.kinds import ChannelKind, ChannelSpec, Option, RateLimit
from notifier.redact import Secret
from notifier.routing import Route, parse_routes

if TYPE_CHECKING:
    from notifier.plugins import PluginHost

CONFIG_ENV = "NOTIFIER_CONFIG"
DEFAULT_FILE = "notifier.toml"
TOP_LEVEL = ("channels", "routes", "dispatcher", "outbox")
# Keys every channel accepts besides its kind's own options.
CHANNEL_KEYS = ("kind", "rate_limit", "delivery_timeout")


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


@attrs.frozen
class DispatcherSettings:
    """``[dispatcher]``: concurrency and the per-delivery time budget."""

    workers: int = 8
    delivery_timeout: float = 30.0


_DISPATCHER_OPTIONS = (
    Option("workers", int, default=8, minimum=1, help="deliveries that may run at once"),
    Option(
        "delivery_timeout",
        float,
        default=30.0,
        minimum=0.001,
        help="seconds one delivery may take before it counts as failed",
    ),
)


@attrs.frozen
class Config:
    """A validated deployment configuration."""

    file: str
    channels: Mapping[str, ChannelSpec] = attrs.field(factory=dict)
    routes: tuple[Route, ...] = ()
    dispatcher: DispatcherSettings = DispatcherSettings()
    outbox: Mapping[str, Any] | None = None  # None: no [outbox] table at all
    base_dir: Path = Path(".")


def find_config(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """The file to read: ``path``, else ``$NOTIFIER_CONFIG``, else ``./notifier.toml``."""
    env = os.environ if env is None else env
    if path:
        return Path(path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    if Path(DEFAULT_FILE).is_file():
        return Path(DEFAULT_FILE)
    raise ConfigError(
        [
            ConfigIssue(
                "<no file>",
                "",
                f"no configuration: pass --config FILE, set {CONFIG_ENV}, "
                f"or create ./{DEFAULT_FILE}",
            )
        ]
    )


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), "", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigIssue(str(path), "", "a file, got a directory")]) from None
    except PermissionError:
        raise ConfigError([ConfigIssue(str(path), "", "a readable file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(str(path), "", f"valid TOML: {exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(str(path), "", "UTF-8 text")]) from None


def load_config(
    path: str | os.PathLike[str] | None,
    host: PluginHost,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate a config file against the host's channel kinds."""
    found = find_config(path, env)
    return parse_config(read_toml(found), host, str(found), env, found.parent)


def parse_config(
    data: Mapping[str, Any],
    host: PluginHost,
    file: str = "<inline>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    issues = Issues(file)
    base_dir = base_dir or Path(".")
    for key in data:
        if key not in TOP_LEVEL:
            issues.add(key, f"no such top-level key; expected one of {', '.join(TOP_LEVEL)}")

    dispatcher = DispatcherSettings(
        **_options(
            data.get("dispatcher", {}), _DISPATCHER_OPTIONS, "dispatcher", issues, env, base_dir
        )
    )
    channels: dict[str, ChannelSpec] = {}
    raw_channels = data.get("channels", {})
    if not isinstance(raw_channels, Mapping):
        issues.add("channels", "a table of channels ([channels.<name>])")
        raw_channels = {}
    for name, table in raw_channels.items():
        spec = _channel(name, table, host, issues, env, base_dir, dispatcher.delivery_timeout)
        if spec is not None:
            channels[name] = spec

    routes = parse_routes(data.get("routes", []), raw_channels, issues)
    outbox = data.get("outbox")
    if outbox is not None:
        if isinstance(outbox, Mapping):
            outbox = _outbox(outbox, issues, env, base_dir)
        else:
            issues.add("outbox", "a table ([outbox])")
            outbox = None
    issues.raise_if_any()
    return Config(file, channels, routes, dispatcher, outbox, base_dir)


def parse_channel(
    name: str,
    table: Mapping[str, Any],
    host: PluginHost,
    file: str = "<inline>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> ChannelSpec:
    """Validate one ``[channels.<name>]`` table; raise every problem at once."""
    issues = Issues(file)
    spec = _channel(name, table, host, issues, env, base_dir or Path("."), 30.0)
    issues.raise_if_any()
    assert spec is not None
    return spec


def _channel(
    name: str,
    table: Any,
    host: PluginHost,
    issues: Issues,
    env: Mapping[str, str] | None,
    base_dir: Path,
    default_timeout: float,
) -> ChannelSpec | None:
    where = f"channels.{name}"
    if not isinstance(table, Mapping):
        issues.add(where, "a table with at least a 'kind'")
        return None
    kind_name = table.get("kind")
    if not isinstance(kind_name, str):
        issues.add(f"{where}.kind", "the channel's kind, a string (see `notifier channels`)")
        return None
    kind = host.kinds.get(kind_name)
    if kind is None:
        hint = difflib.get_close_matches(kind_name, host.kinds, n=1)
        issues.add(
            f"{where}.kind",
            f"an installed channel kind, got {kind_name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; installed: {', '.join(sorted(host.kinds))}",
        )
        return None
    before = len(issues.found)
    own = {k: v for k, v in table.items() if k not in CHANNEL_KEYS}
    options = _options(own, kind.options, where, issues, env, base_dir, kind=kind)
    rate_limit = _rate_limit(table.get("rate_limit", None), kind, f"{where}.rate_limit", issues)
    timeout = table.get("delivery_timeout", default_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        issues.add(f"{where}.delivery_timeout", "a number of seconds > 0")
        timeout = default_timeout
    spec = ChannelSpec(name, kind_name, options, rate_limit, float(timeout), issues.file)
    if kind.validate is not None and len(issues.found) == before:
        issues.found.extend(kind.validate(spec))
    return spec


def _rate_limit(value: Any, kind: ChannelKind, path: str, issues: Issues) -> RateLimit | None:
    if value is None:
        return kind.rate_limit
    if value is False:
        return None
    if isinstance(value, Mapping) and set(value) == {"count", "per"}:
        count = Option("count", int, minimum=1).check(value["count"])
        per = Option("per", float, minimum=0.001).check(value["per"])
        if count is None and per is None:
            return RateLimit(value["count"], float(value["per"]))
    issues.add(path, "a table { count = <int > 0>, per = <seconds > 0> }, or false")
    return kind.rate_limit


def _options(
    table: Any,
    schema: tuple[Option, ...],
    where: str,
    issues: Issues,
    env: Mapping[str, str] | None,
    base_dir: Path,
    kind: ChannelKind | None = None,
) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        issues.add(where, "a table")
        return {}
    known = {opt.name: opt for opt in schema}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        opt = known.get(key)
        if opt is None:
            accepted = sorted(known) + ([*CHANNEL_KEYS] if kind else [])
            hint = difflib.get_close_matches(key, accepted, n=1)
            owner = f"kind {kind.name!r}" if kind else f"[{where}]"
            issues.add(
                f"{where}.{key}",
                f"no such option for {owner}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; accepted: {', '.join(accepted)}",
            )
            continue
        value = _resolve(raw, opt, f"{where}.{key}", issues, env)
        if value is not _INVALID:
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


_INVALID = object()


def _is_env_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and "env" in value and set(value) <= {"env", "default"}


def _resolve(
    raw: Any, opt: Option, path: str, issues: Issues, env: Mapping[str, str] | None
) -> Any:
    env = os.environ if env is None else env
    value = raw
    if _is_env_ref(raw):
        name = raw["env"]
        if not isinstance(name, str) or not name:
            issues.add(f"{path}.env", "the name of an environment variable")
            return _INVALID
        if name in env:
            value = _from_env(env[name], opt)
        elif "default" in raw:
            value = raw["default"]
            if isinstance(value, str):  # a default is written as the variable would be
                value = _from_env(value, opt)
        else:
            issues.add(path, f"environment variable {name} is not set (expected {opt.expected})")
            return _INVALID
        if value is _INVALID:
            issues.add(path, f"environment variable {name} to hold {opt.expected}")
            return _INVALID
    elif opt.type is dict and isinstance(raw, Mapping):
        value = {}
        for key, item in raw.items():
            if _is_env_ref(item):
                item = _resolve(item, Option(key), f"{path}.{key}", issues, env)
                if item is _INVALID:
                    return _INVALID
            value[key] = item
    problem = opt.check(value)
    if problem:
        issues.add(path, problem + _help(opt))
        return _INVALID
    return value


def _from_env(text: str, opt: Option) -> Any:
    if opt.type is str:
        return text
    try:
        if opt.type is int:
            return int(text)
        if opt.type is float:
            return float(text)
    except ValueError:
        return _INVALID
    if opt.type is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        return _INVALID
    if opt.type is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return _INVALID


def _finish(value: Any, opt: Option, base_dir: Path) -> Any:
    if opt.type is list:
        value = [str(v) for v in value]
    elif opt.type is float:
        value = float(value)
    if opt.path and isinstance(value, str) and not Path(value).is_absolute():
        value = str(base_dir / value)
    if opt.secret and isinstance(value, str):
        value = Secret(value)
    return value


def _outbox(
    table: Mapping[str, Any], issues: Issues, env: Mapping[str, str] | None, base_dir: Path
) -> dict[str, Any]:
    # The outbox validates its own keys; here only env references and relative paths.
    values: dict[str, Any] = {}
    for key, raw in table.items():
        value = (
            _resolve(raw, Option(key), f"outbox.{key}", issues, env) if _is_env_ref(raw) else raw
        )
        if value is _INVALID:
            continue
        if key == "path" and isinstance(value, str) and value != ":memory:":
            value = str(base_dir / Path(value).expanduser())
        values[key] = value
    from notifier.outbox.settings import OutboxSettings  # only configs with [outbox] pay

    try:
        OutboxSettings.from_table(values, file=issues.file)
    except ConfigError as exc:
        issues.found.extend(exc.issues)
    return values
