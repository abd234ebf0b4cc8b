"""Message templates: Jinja2 in a sandbox, compiled once when the config is loaded.

A channel or a route takes ``template = { file = "templates/db.md.j2" }`` (relative to the
config file) or ``template = { text = "..." }``. Templates render in
:class:`jinja2.sandbox.SandboxedEnvironment` (no access to Python internals) with
:class:`jinja2.StrictUndefined` (a misspelled name is an error, not an empty string);
kinds whose output is HTML (email) render with autoescaping. ``docs/templates.md`` lists
every name a template sees; :func:`context` builds them.

Errors carry the template's name (its file, or ``channels.NAME.template``) and line:
syntax errors when the config is loaded, undefined names and sandbox refusals when a
template renders (``notifier check`` renders every template against sample alerts).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from notifier.errors import NotifierError
from notifier.groups import AlertGroup
from notifier.models import Alert, Link
from notifier.render import fit, render_markdown, render_text

if TYPE_CHECKING:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from notifier.config import Config
    from notifier.kinds import ChannelKind
    from notifier.models import DeliveryContext
    from notifier.values import Issues

__all__ = [
    "DEFAULT_TIME_FORMAT",
    "Format",
    "MessageTemplate",
    "RenderSettings",
    "Rendering",
    "TemplateError",
    "context",
    "message",
    "parse_template",
    "sample_groups",
]

Format = Literal["text", "html", "json"]
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
TEMPLATE_KEYS = ("file", "text")


class TemplateError(NotifierError):
    """A template failed to render (an undefined name, a refused operation, bad JSON).

    Not retryable: the same alert renders the same way next time.

    :param template: the template's name: its file, or ``channels.NAME.template``.
    :param line: the template line that failed, when known.
    """

    retryable = False

    def __init__(self, template: str, line: int | None, problem: str) -> None:
        where = f"{template}:{line}" if line else template
        super().__init__(f"template {where}: {problem}")
        self.template, self.line, self.problem = template, line, problem


@attrs.frozen
class RenderSettings:
    """``[render]``: the time zone (an IANA name) and ``strftime`` format templates use."""

    timezone: str = "UTC"
    time_format: str = DEFAULT_TIME_FORMAT

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_table(cls, table: Any, issues: Issues) -> RenderSettings:
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            issues.add("render", "a table ([render])")
            return cls()
        values: dict[str, str] = {}
        for key, value in table.items():
            if key not in ("timezone", "time_format"):
                issues.add(f"render.{key}", "no such key; expected one of timezone, time_format")
            elif not isinstance(value, str) or not value.strip():
                issues.add(f"render.{key}", "a non-empty string")
            else:
                values[key] = value
        zone = values.get("timezone")
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                issues.add(
                    "render.timezone", f'an IANA time zone such as "Asia/Shanghai", got {zone!r}'
                )
                values.pop("timezone")
        return cls(**values)


# -- filters ----------------------------------------------------------------------------


def _settings(ctx: jinja2.runtime.Context) -> RenderSettings:
    found = ctx.get("render")
    return found if isinstance(found, RenderSettings) else RenderSettings()


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def localtime(ctx: jinja2.runtime.Context, value: Any, fmt: str | None = None) -> str:
    """A time in ``[render].timezone``, formatted with ``fmt`` or ``[render].time_format``."""
    when = _as_datetime(value)
    if when is None:
        return ""
    settings = _settings(ctx)
    return when.astimezone(settings.zone).strftime(fmt or settings.time_format)


def duration(value: Any, end: Any = None) -> str:
    """``1h2m3s``: seconds, or the time from ``value`` to ``end`` (two times)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = int(value)
    else:
        start, stop = _as_datetime(value), _as_datetime(end)
        if start is None or stop is None:
            return ""
        seconds = int((stop - start).total_seconds())
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    days, hours = divmod(hours, 24)
    text = (f"{days}d" if days else "") + (f"{hours}h" if days or hours else "")
    return text + (f"{minutes}m" if days or hours or minutes else "") + f"{secs}s"


def truncate_bytes(value: Any, limit: int, marker: str = "…") -> str:
    """``value`` cut to ``limit`` UTF-8 bytes on a character boundary, ``marker`` included."""
    return fit(str(value), int(limit), "truncate", marker)[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def escape_json(value: Any) -> str:
    """``value`` JSON-escaped without its quotes, for text inside a JSON string; a time
    as ``tojson`` writes it (ISO 8601)."""
    text = _json_default(value) if isinstance(value, datetime) else str(value)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def mention(value: Any, prefix: str = "@") -> str:
    """``@a @b`` for a list of people (or one); ``@all`` stays as it is."""
    names = [value] if isinstance(value, str) else list(value or ())
    return " ".join(n if str(n).startswith(prefix) else f"{prefix}{n}" for n in map(str, names))


FILTERS = {
    "duration": duration,
    "truncate_bytes": truncate_bytes,
    "mention": mention,
    "escape_json": escape_json,
}


Escape = Callable[[str], str]


@functools.cache
def _environment(autoescape: bool, escape: Escape | None = None) -> SandboxedEnvironment:
    # Jinja2 loads on the first template: a configuration without one never pays for it.
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters["localtime"] = jinja2.pass_context(localtime)
    env.policies["json.dumps_kwargs"] = {
        "sort_keys": True,
        "ensure_ascii": False,
        "default": _json_default,
    }
    if escape is not None:
        env.finalize = _finalizer(escape)
    return env


def _finalizer(escape: Escape) -> Callable[[Any], Any]:
    """Every ``{{ value }}`` escaped for the kind's markup, so alert text cannot forge a
    mention or a link; ``| safe`` (and ``tojson``) output stays as it is."""

    import markupsafe

    def finalize(value: Any) -> Any:
        if isinstance(value, markupsafe.Markup):
            return value
        return escape(value if isinstance(value, str) else str(value))

    return finalize


def _compile(env: SandboxedEnvironment, source: str, name: str) -> jinja2.Template:
    code = env.compile(source, name=name, filename=name)
    return env.template_class.from_code(env, code, env.make_globals(None), None)


def _line(exc: BaseException, name: str) -> int | None:
    """The template line ``exc`` was raised at (Jinja rewrites tracebacks to show it)."""
    line = getattr(exc, "lineno", None)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@attrs.frozen
class MessageTemplate:
    """One template, compiled for text and for HTML (autoescaped) output, and on first use
    for each kind's own escaping (:attr:`~notifier.kinds.ChannelKind.template_escape`)."""

    name: str
    source: str = attrs.field(repr=False)
    text: jinja2.Template = attrs.field(eq=False, repr=False)
    html: jinja2.Template = attrs.field(eq=False, repr=False)
    _escaped: dict[tuple[bool, Escape], jinja2.Template] = attrs.field(
        factory=dict, eq=False, repr=False, init=False
    )

    def _compiled(self, fmt: Format, escape: Escape | None) -> jinja2.Template:
        if escape is None:
            return self.html if fmt == "html" else self.text
        key = (fmt == "html", escape)
        found = self._escaped.get(key)
        if found is None:  # compiling twice in a race is harmless: same source, same code
            found = _compile(_environment(*key), self.source, self.name)
            self._escaped[key] = found
        return found

    @classmethod
    def compile(cls, source: str, name: str) -> MessageTemplate:
        """:raises TemplateError: on a syntax error, with its line."""
        import jinja2

        try:
            text = _compile(_environment(False), source, name)
            html = _compile(_environment(True), source, name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(name, exc.lineno, exc.message or "syntax error") from None
        return cls(name, source, text, html)

    def render(
        self, values: Mapping[str, Any], fmt: Format = "text", escape: Escape | None = None
    ) -> str:
        """The output for ``values`` (see :func:`context`), every ``{{ value }}`` passed
        through ``escape`` when given.

        :raises TemplateError: an undefined name, a sandbox refusal, any error raised while
            rendering, or (``fmt="json"``) output that is not a JSON document.
        """
        import jinja2

        compiled = self._compiled(fmt, escape)
        try:
            out = compiled.render(values)
        except jinja2.UndefinedError as exc:
            raise TemplateError(self.name, _line(exc, self.name), str(exc.message)) from None
        except jinja2.TemplateError as exc:  # SecurityError: the sandbox refused
            problem = (
                f"refused: {exc.message}"
                if isinstance(exc, jinja2.exceptions.SecurityError)
                else str(exc)
            )
            raise TemplateError(self.name, _line(exc, self.name), problem) from None
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            raise TemplateError(self.name, _line(exc, self.name), problem) from None
        if fmt == "json":
            try:
                json.loads(out)
            except ValueError as exc:
                raise TemplateError(self.name, None, f"the output is not JSON ({exc})") from None
        return out


# -- loading ----------------------------------------------------------------------------

_WHOLE_STRING = re.compile(r'"\$\{(\w+)\}"|"\$(\w+)"')
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_STRUCTURED = ("labels", "annotations", "links", "ends_at")
_ALERT_FIELDS = (
    "title", "body", "severity", "status", "fingerprint", "starts_at", "ends_at", "source",
    "labels", "annotations", "links",
)  # fmt: skip


def _new_form(old: str) -> str:
    """An old ``${name}`` JSON template written in the Jinja2 form."""

    def value(match: re.Match[str]) -> tuple[str, str]:
        name = next(g for g in match.groups() if g)
        return name, (f"alert.{name}" if name in _ALERT_FIELDS else name)

    def whole(match: re.Match[str]) -> str:
        return f"{{{{ {value(match)[1]} | tojson }}}}"

    def inside(match: re.Match[str]) -> str:
        name, expr = value(match)
        return f"{{{{ {expr} | {'tojson' if name in _STRUCTURED else 'escape_json'} }}}}"

    return _PLACEHOLDER.sub(inside, _WHOLE_STRING.sub(whole, old))


def _in_new_form(old: str) -> str:
    return (
        "${...} placeholders are no longer supported, write it in Jinja2: "
        f"template = {{ text = {_toml_string(_new_form(old))} }}"
    )


def _toml_string(text: str) -> str:
    """``text`` as a TOML string a user can paste: literal when it can be."""
    if "'" not in text and "\n" not in text:
        return f"'{text}'"
    if "'''" not in text:
        return f"'''\n{text}'''"
    return json.dumps(text, ensure_ascii=False)


_OLD_NAMES = frozenset((*_ALERT_FIELDS, "text", "markdown", "channel", "idempotency_key"))


def _old_style(source: str) -> bool:
    """``source`` is a ``${name}`` template of the old webhook form, not Jinja2 (a bare
    ``$name`` may well be meant as text, so only the braced form counts)."""
    if "{{" in source or "{%" in source:
        return False
    return any(name in _OLD_NAMES for name in re.findall(r"\$\{(\w+)\}", source))


def parse_template(raw: Any, where: str, issues: Issues, base_dir: Path) -> MessageTemplate | None:
    """``template = { file = ... }`` or ``{ text = ... }`` compiled; problems into ``issues``."""
    expected = 'a table { file = "templates/NAME.j2" } or { text = "..." }'
    if isinstance(raw, str):
        issues.add(where, f"{expected}; {_in_new_form(raw)}" if "${" in raw else expected)
        return None
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in TEMPLATE_KEYS:
        issues.add(where, expected)
        return None
    ((key, value),) = raw.items()
    if not isinstance(value, str) or (key == "file" and not value.strip()):
        issues.add(f"{where}.{key}", "a string" if key == "text" else "a file path")
        return None
    if key == "text":
        name, source = where, value
    else:
        path = base_dir / Path(value).expanduser()
        name = str(path)
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            issues.add(f"{where}.file", f"an existing template file, {name} not found")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            issues.add(f"{where}.file", f"a readable UTF-8 template file, {name}: {exc}")
            return None
    if _old_style(source):
        issues.add(where, _in_new_form(source))
        return None
    try:
        return MessageTemplate.compile(source, name)
    except TemplateError as exc:
        issues.add(where, f"a valid template: {exc.template}:{exc.line}: {exc.problem}")
        return None


# -- the context ------------------------------------------------------------------------


def _alert_view(alert: Alert) -> dict[str, Any]:
    ended = alert.ends_at
    return {
        "title": alert.title,
        "body": alert.body,
        "severity": alert.severity,
        "status": alert.status.value,
        "resolved": alert.resolved,
        "firing": not alert.resolved,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "fingerprint": alert.fingerprint,
        "starts_at": alert.starts_at,
        "ends_at": ended,
        "duration": int((ended - alert.starts_at).total_seconds()) if ended else None,
        "links": [{"url": link.url, "title": link.title} for link in alert.links],
        "source": alert.source,
    }


def _group_view(group: AlertGroup) -> dict[str, Any]:
    alerts = [_alert_view(a) for a in group.alerts]
    return {
        "alerts": alerts,
        "firing": [a for a in alerts if a["firing"]],
        "resolved": [a for a in alerts if a["resolved"]],
        "counts": group.counts,
        "status": group.status.value,
        "receiver": group.receiver,
        "group_labels": dict(group.group_labels),
        "common_labels": dict(group.common_labels),
        "common_annotations": dict(group.common_annotations),
        "external_url": group.external_url,
        "group_key": group.group_key,
        "truncated_alerts": group.truncated_alerts,
    }


def context(
    alert: Alert,
    *,
    group: AlertGroup | None = None,
    settings: RenderSettings | None = None,
    channel: str = "",
    mentions: Sequence[str] = (),
    idempotency_key: str = "",
) -> dict[str, Any]:
    """Every name a template sees (docs/templates.md describes each)."""
    group = group or AlertGroup.of(alert)
    view = _group_view(group)
    return {
        "alert": _alert_view(alert),
        "group": view,
        "alerts": view["alerts"],
        "channel": channel,
        "mentions": list(mentions),
        "idempotency_key": idempotency_key,
        "text": render_text(alert),
        "markdown": render_markdown(alert),
        "render": settings or RenderSettings(),
    }


@attrs.frozen
class Rendering:
    """A template bound to one delivery's channel: what :func:`message` renders with."""

    template: MessageTemplate
    settings: RenderSettings = RenderSettings()
    channel: str = ""
    fmt: Format = "text"
    group: AlertGroup | None = None
    escape: Escape | None = None

    def render(self, alert: Alert, delivery: DeliveryContext) -> str:
        values = context(
            alert,
            group=self.group,
            settings=self.settings,
            channel=self.channel,
            mentions=delivery.mentions,
            idempotency_key=delivery.idempotency_key,
        )
        # Loops leave a line break after the last item; a message never ends in blank lines.
        return self.template.render(values, self.fmt, self.escape).rstrip()


def message(alert: Alert, delivery: DeliveryContext) -> str | None:
    """The delivery's message rendered from its template; ``None`` when it has none (the
    kind then uses its own layout).

    :raises TemplateError: the template failed for this alert.
    """
    rendering = delivery.template
    return None if rendering is None else rendering.render(alert, delivery)


# -- samples for `notifier check` ----------------------------------------------------------

_SAMPLE_START = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
SAMPLES = {
    "firing": "a firing alert",
    "resolved": "a resolved alert",
    "grouped": "a group of three",
    "cjk": "CJK text",
}


def sample_groups(labels: Iterable[str] = ()) -> dict[str, AlertGroup]:
    """Alerts every template is checked against: a firing alert, a resolved one, a group
    of several, and CJK text. Each carries ``labels`` (those routes match on and mention
    from) so templates may use them without a default."""
    extra = {name: f"sample-{name}" for name in labels}
    base = {"alertname": "HighLatency", "instance": "db-1:9100", "job": "node", **extra}
    link = Link("https://grafana.example.com/d/db", "Dashboard")
    firing = Alert(
        title="High latency on db-1",
        body="p99 latency is 2.4 s (threshold 1 s)",
        severity="critical",
        labels={**base, "severity": "critical"},
        annotations={"summary": "High latency on db-1", "runbook_url": "https://runbooks/db"},
        starts_at=_SAMPLE_START,
        links=(link,),
        source="sample",
    )
    resolved = attrs.evolve(
        firing, status="resolved", ends_at=_SAMPLE_START + timedelta(minutes=42)
    )
    cjk = Alert(
        title="支付网关超时 🚨",
        body="华东区支付网关 p99 延迟超过 2 秒\uff0c影响下单。" * 3,
        severity="error",
        labels={**base, "service": "支付"},
        starts_at=_SAMPLE_START,
        source="sample",
    )
    other = attrs.evolve(firing, labels={**firing.labels, "instance": "db-2:9100"}, fingerprint="")
    return {
        "firing": AlertGroup.of(firing),
        "resolved": AlertGroup.of(resolved),
        "grouped": AlertGroup(
            (firing, other, resolved), group_labels={"alertname": "HighLatency"}, receiver="ops"
        ),
        "cjk": AlertGroup.of(cjk),
    }


def check_template(
    template: MessageTemplate,
    fmt: Format,
    settings: RenderSettings,
    *,
    channel: str = "",
    labels: Iterable[str] = (),
    escape: Escape | None = None,
) -> list[TemplateError]:
    """Render ``template`` against every sample; the errors, one per failing template line."""
    errors: dict[tuple[int | None, str], TemplateError] = {}
    for sample, group in sample_groups(labels).items():
        alert = group.summary()
        values = context(
            alert, group=group, settings=settings, channel=channel, mentions=("sample-owner",)
        )
        try:
            template.render(values, fmt, escape)
        except TemplateError as exc:
            # Which sample failed tells the author what case the template misses.
            problem = f"{exc.problem} (sample: {SAMPLES[sample]})"
            errors.setdefault(
                (exc.line, exc.problem), TemplateError(exc.template, exc.line, problem)
            )
    return list(errors.values())


def check_config(config: Config, kinds: Mapping[str, ChannelKind]) -> list[str]:
    """Every template of ``config`` rendered against the samples, for each format it is
    used in; one line per problem, naming the template's key, file and line."""
    problems: list[str] = []
    settings = config.render
    for name, spec in config.channels.items():
        if spec.template is None:
            continue
        fmt = _format(kinds, spec.kind)
        for exc in check_template(
            spec.template, fmt, settings, channel=name, labels=spec.mention_labels
        ):
            problems.append(f"channels.{name}.template: {exc}")
    for index, route in enumerate(config.routes):
        if route.template is None:
            continue
        labels = (*route.labels, *route.mention_labels)
        channels = [config.channels[c] for c in route.channels if c in config.channels]
        seen: set[str] = set()
        for spec in channels:
            fmt = _format(kinds, spec.kind)
            if fmt in seen:
                continue
            seen.add(fmt)
            labels_here = (*labels, *spec.mention_labels)
            for exc in check_template(
                route.template, fmt, settings, channel=spec.name, labels=labels_here
            ):
                problems.append(f"routes[{index}].template: {exc}")
    return problems


def _format(kinds: Mapping[str, ChannelKind], kind: str) -> Format:
    found = kinds.get(kind)
    return template_format(found) if found is not None else "text"


def template_format(kind: ChannelKind) -> Format:
    """What a template renders for ``kind``: ``"html"``, ``"json"`` or (else) ``"text"``."""
    if kind.template_format == "html":
        return "html"
    return "json" if kind.template_format == "json" else "text"
