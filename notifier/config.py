"""Per-deployment configuration: one TOML file, validated all at once.

The file is found from ``--config`` or ``NOTIFIER_CONFIG``. Top-level tables:
``[channels.<name>]`` (``kind`` plus that kind's options), ``[[routes]]``,
``[dispatcher]``, ``[outbox]``, ``[celery]`` (deliveries on Celery workers) and
``[render]`` (how templates show times). Any option
may read an environment variable with ``{ env = "NAME" }`` (optionally ``default =
"..."``). Every problem is collected with its file, key path and what was expected, then
raised together as one
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
from notifier.limits import (
    MAX_DELIVERY_TIMEOUT,
    MAX_RATE_COUNT,
    MAX_RATE_PER,
    MAX_WORKERS,
)
from notifier.routing import Route, parse_routes, parse_template_keys
from notifier.server.settings import ServerSettings
from notifier.templates import RenderSettings
from notifier.values import INVALID, Issues, is_env_ref, option_values, resolve

if TYPE_CHECKING:
    from notifier.celery.settings import CelerySettings
    from notifier.plugins import PluginHost

CONFIG_ENV = "NOTIFIER_CONFIG"
DEFAULT_FILE = "notifier.toml"
TOP_LEVEL = ("channels", "routes", "dispatcher", "outbox", "celery", "render", "server")
# Keys every channel accepts besides its kind's own options.
CHANNEL_KEYS = (
    "kind",
    "rate_limit",
    "delivery_timeout",
    "template",
    "mention_labels",
    "digest_threshold",
)


@attrs.frozen
class DispatcherSettings:
    """``[dispatcher]``: concurrency and the per-delivery time budget."""

    workers: int = 8
    delivery_timeout: float = 30.0


_DISPATCHER_OPTIONS = (
    Option(
        "workers",
        int,
        default=8,
        minimum=1,
        maximum=MAX_WORKERS,
        help="deliveries that may run at once",
    ),
    Option(
        "delivery_timeout",
        float,
        default=30.0,
        minimum=0.001,
        maximum=MAX_DELIVERY_TIMEOUT,
        help="seconds one delivery may take before it counts as failed",
    ),
)
_CHANNEL_TIMEOUT = attrs.evolve(
    _DISPATCHER_OPTIONS[1], help="seconds one delivery on this channel may take"
)
_DIGEST_THRESHOLD = Option(
    "digest_threshold",
    int,
    minimum=0,
    maximum=MAX_RATE_COUNT,
    help="waiting deliveries past which the outbox sends one digest; 0: never",
)
_RATE_COUNT = Option("count", int, minimum=1, maximum=MAX_RATE_COUNT, help="deliveries")
_RATE_PER = Option(
    "per", float, minimum=0.001, maximum=MAX_RATE_PER, help="seconds in which they may start"
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
    render: RenderSettings = attrs.field(factory=RenderSettings)
    server: ServerSettings = attrs.field(factory=ServerSettings)
    celery: CelerySettings | None = None  # None: no [celery] table


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
    except RecursionError:
        raise ConfigError([ConfigIssue(str(path), "", "valid TOML: nested too deeply")]) from None


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
        **option_values(
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

    routes = parse_routes(data.get("routes", []), raw_channels, issues, base_dir=base_dir)
    render = RenderSettings.from_table(data.get("render"), issues)
    outbox = data.get("outbox")
    if outbox is not None:
        if isinstance(outbox, Mapping):
            outbox = _outbox(outbox, issues, env, base_dir)
        else:
            issues.add("outbox", "a table ([outbox])")
            outbox = None
    server = ServerSettings.from_table(data.get("server"), issues, env)
    celery = None
    if "celery" in data:
        from notifier.celery.settings import CelerySettings  # only configs with [celery] pay

        celery = CelerySettings.from_table(data["celery"], issues, env, base_dir)
        if outbox is not None and outbox.get("enabled", True) is not False:
            issues.add(
                "celery",
                "one way to queue deliveries: [celery] or [outbox], not both "
                "(docs/scale-out.md says when to move from the outbox)",
            )
    issues.raise_if_any()
    return Config(file, channels, routes, dispatcher, outbox, base_dir, render, server, celery)


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
            + f"; installed: {', '.join(sorted(host.kinds))}"
            + _failed_plugins(kind_name, host),
        )
        return None
    before = len(issues.found)
    own = {k: v for k, v in table.items() if k not in CHANNEL_KEYS}
    options = option_values(
        own,
        kind.options,
        where,
        issues,
        env,
        base_dir,
        owner=f"kind {kind.name!r}",
        also_accepted=CHANNEL_KEYS,
    )
    rate_limit = _rate_limit(table.get("rate_limit", None), kind, f"{where}.rate_limit", issues)
    timeout = table.get("delivery_timeout", default_timeout)
    problem = _CHANNEL_TIMEOUT.check(timeout)
    if problem:
        issues.add(f"{where}.delivery_timeout", f"{problem} ({_CHANNEL_TIMEOUT.help})")
        timeout = default_timeout
    template, mention_labels = parse_template_keys(table, where, issues, base_dir)
    digest = table.get("digest_threshold")
    if digest is not None and (problem := _DIGEST_THRESHOLD.check(digest)):
        issues.add(f"{where}.digest_threshold", problem)
        digest = None
    spec = ChannelSpec(
        name,
        kind_name,
        options,
        rate_limit,
        float(timeout),
        issues.file,
        template,
        mention_labels,
        digest_threshold=digest,
    )
    if kind.validate is not None:
        issues.found.extend(_kind_issues(kind, spec, issues.found[before:]))
    return spec


def _kind_issues(kind: ChannelKind, spec: ChannelSpec, reported: list[ConfigIssue]) -> list[Any]:
    """The kind's ``validate`` issues, found together with the options' own.

    With options that failed their own check, ``validate`` sees each of them at its
    default (a required one stays missing); an issue it finds at a key already reported
    is left out, and a rule that cannot run on such a partial table (it raises) waits
    until the options are fixed.
    """
    assert kind.validate is not None
    if not reported:
        return list(kind.validate(spec))
    defaults = {o.name: o.default for o in kind.options if not o.required}
    partial = attrs.evolve(spec, options={**defaults, **spec.options})
    try:
        found = list(kind.validate(partial))
    except Exception:  # the rule needs an option that failed its own check
        return []
    taken = {issue.path for issue in reported}

    def new(issue: Any) -> bool:
        path = str(getattr(issue, "path", ""))
        return not any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in taken)

    return [issue for issue in found if new(issue)]


def _failed_plugins(kind_name: str, host: PluginHost) -> str:
    """Why the kind may be missing: the plugins that failed to load, the likely provider
    (one whose name starts the kind's, as ``wework`` does ``wework-robot``) alone if any."""
    failed = host.problems
    if not failed:
        return ""

    def short(name: str) -> str:
        return name.removeprefix("notifier-").removeprefix("notifier_")

    likely = [
        r for r in failed if any(kind_name.startswith(short(n)) for n in (r.name, r.dist) if n)
    ]
    shown = "; ".join(
        f"plugin {r.name!r} ({r.dist}) failed to load: {r.error}" for r in (likely or failed)
    )
    return f"; {shown}"


def _rate_limit(value: Any, kind: ChannelKind, path: str, issues: Issues) -> RateLimit | None:
    if value is None:
        return kind.rate_limit
    if value is False:
        return None
    if isinstance(value, Mapping) and set(value) == {"count", "per"}:
        problems = [(o.name, o.check(value[o.name])) for o in (_RATE_COUNT, _RATE_PER)]
        for key, problem in problems:
            if problem:
                issues.add(f"{path}.{key}", problem)
        if not any(problem for _, problem in problems):
            return RateLimit(value["count"], float(value["per"]))
        return kind.rate_limit
    issues.add(path, "a table { count = <int > 0>, per = <seconds > 0> }, or false")
    return kind.rate_limit


def _outbox(
    table: Mapping[str, Any], issues: Issues, env: Mapping[str, str] | None, base_dir: Path
) -> dict[str, Any]:
    # The outbox validates its own keys; here only env references and relative paths.
    values: dict[str, Any] = {}
    for key, raw in table.items():
        value = resolve(raw, Option(key), f"outbox.{key}", issues, env) if is_env_ref(raw) else raw
        if value is INVALID:
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
