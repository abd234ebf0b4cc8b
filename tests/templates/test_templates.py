"""Templates: the sandbox, strict names, errors with file and line, time zones, groups,
mentions from labels, and the config keys that carry them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifier import Alert
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.groups import AlertGroup
from notifier.mentions import is_mobile, label_mentions
from notifier.plugins import PluginHost
from notifier.routing import resolve
from notifier.templates import (
    MessageTemplate,
    RenderSettings,
    TemplateError,
    check_template,
    context,
)

AT = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.load()


def _render(source: str, alert: Alert | None = None, **kwargs) -> str:
    alert = alert or Alert(title="db down", starts_at=AT)
    values = context(alert, **kwargs)
    return MessageTemplate.compile(source, "t.j2").render(values)


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ alert.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ self._TemplateReference__context }}",
        "{{ '{0.__class__.__init__.__globals__}'.format(alert.title) }}",
        "{{ range.__self__ }}",
    ],
)
def test_the_sandbox_refuses_known_escapes(escape: str) -> None:
    with pytest.raises(TemplateError) as caught:
        _render(escape)
    assert caught.value.template == "t.j2" and caught.value.line == 1
    assert not caught.value.retryable


def test_a_sandbox_refusal_says_so() -> None:
    with pytest.raises(TemplateError, match=r"t\.j2:1: refused: access to attribute '__class__'"):
        _render("{{ ''.__class__ }}")


def test_an_undefined_name_is_an_error_with_its_line_not_an_empty_string() -> None:
    with pytest.raises(TemplateError, match=r"template t\.j2:3: 'owner' is undefined"):
        _render("{{ alert.title }}\n\n{{ owner }}")
    with pytest.raises(TemplateError, match=r"t\.j2:2: 'dict object' has no attribute 'team'"):
        _render("ok\n{{ alert.labels.team }}")
    assert _render("{{ alert.labels.team | default('none') }}") == "none"


def test_a_syntax_error_names_the_template_and_line() -> None:
    with pytest.raises(TemplateError, match=r"template db\.j2:2: "):
        MessageTemplate.compile("{{ alert.title }}\n{% if %}", "db.j2")


def test_times_show_in_the_render_timezone_and_format() -> None:
    settings = RenderSettings(timezone="Asia/Shanghai", time_format="%H:%M")
    assert _render("{{ alert.starts_at | localtime }}", settings=settings) == "08:30"
    assert _render("{{ alert.starts_at | localtime }}") == "2026-01-01 00:30:00 UTC"
    assert _render("{{ alert.starts_at | localtime('%d %H:%M %Z') }}", settings=settings) == (
        "01 08:30 CST"
    )


def test_helper_filters_durations_byte_truncation_and_mentions() -> None:
    resolved = Alert(
        title="x",
        status="resolved",
        starts_at=AT,
        ends_at=datetime(2026, 1, 1, 2, 5, 9, tzinfo=UTC),
    )
    assert _render("{{ alert.duration | duration }}", resolved) == "1h35m9s"
    assert _render("{{ alert.starts_at | duration(alert.ends_at) }}", resolved) == "1h35m9s"
    cut = _render("{{ '支付网关超时' | truncate_bytes(10) }}")
    assert cut == "支付…" and len(cut.encode()) <= 10
    assert _render("{{ mentions | mention }}", mentions=("zhangsan", "@all")) == "@zhangsan @all"


def test_email_html_is_autoescaped() -> None:
    template = MessageTemplate.compile("<p>{{ alert.title }}</p>", "mail.j2")
    values = context(Alert(title="<script>x</script>"))
    assert template.render(values, "html") == "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    assert template.render(values, "text") == "<p><script>x</script></p>"


def test_a_group_shows_its_alerts_counts_by_status_and_common_labels() -> None:
    firing = Alert(title="a", labels={"job": "db", "instance": "1"}, starts_at=AT)
    other = Alert(title="b", labels={"job": "db", "instance": "2"}, starts_at=AT)
    done = Alert(title="c", labels={"job": "db", "instance": "3"}, status="resolved")
    group = AlertGroup((firing, other, done))
    source = (
        "{{ group.status }} {{ group.counts.firing }}/{{ group.counts.resolved }}"
        " {{ group.common_labels }}"
        "{% for a in group.firing %} {{ a.title }}{% endfor %}"
    )
    assert _render(source, group.summary(), group=group) == "firing 2/1 {'job': 'db'} a b"
    summary = group.summary()
    assert summary.severity == "warning" and summary.labels == {"job": "db"}
    assert "2 firing, 1 resolved" in summary.title


def test_check_renders_samples_and_reports_each_failing_line_once() -> None:
    template = MessageTemplate.compile("{{ alert.title }}\n{{ alert.labels.owner }}", "x.j2")
    (error,) = check_template(template, "text", RenderSettings())
    assert (error.template, error.line) == ("x.j2", 2)
    # Labels the route matches on or mentions from are in the samples.
    assert check_template(template, "text", RenderSettings(), labels=("owner",)) == []
    json_template = MessageTemplate.compile('{"t": {{ alert.title }}}', "j.j2")
    (error,) = check_template(json_template, "json", RenderSettings())
    assert "the output is not JSON" in str(error)


@pytest.mark.parametrize(
    ("value", "mobile"),
    [
        ("13800000001", True),
        ("+8613800000001", True),
        ("10086", False),  # a short digits-only id is a user id
        ("1380000000", False),  # 10 digits
        ("zhangsan", False),
        ("ou_7d8a6e6df7621556ce0d21922b676706ccs", False),
    ],
)
def test_mobile_numbers_are_told_from_user_ids(value: str, mobile: bool) -> None:
    assert is_mobile(value) is mobile


def test_label_values_may_name_several_people() -> None:
    labels = {"owner": "zhangsan, 13800000001", "oncall": "lisi zhangsan"}
    assert label_mentions(labels, ["owner", "oncall", "absent"]) == (
        "zhangsan",
        "13800000001",
        "lisi",
    )


def _config(host: PluginHost, tmp_path: Path, data: dict) -> object:
    return parse_config(data, host, "n.toml", {}, tmp_path)


def test_a_route_template_and_mention_labels_reach_its_targets(host, tmp_path: Path) -> None:
    data = {
        "channels": {"out": {"kind": "console", "template": {"text": "C {{ alert.title }}"}}},
        "routes": [
            {
                "channels": ["out"],
                "labels": {"team": "db"},
                "template": {"text": "R {{ alert.title }}"},
                "mention_labels": ["owner"],
            },
            {"channels": ["out"]},
        ],
    }
    config = _config(host, tmp_path, data)
    db = Alert(title="x", labels={"team": "db", "owner": "zhangsan"})
    (target,) = resolve(config.routes, config.channels, db)
    assert target.mentions == ("zhangsan",) and target.template.source == "R {{ alert.title }}"
    (target,) = resolve(config.routes, config.channels, Alert(title="y"))
    assert target.template is None  # the channel's own template applies
    assert config.channels["out"].template.source == "C {{ alert.title }}"


def test_template_files_are_relative_to_the_config_file(host, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "db.md.j2").write_text("F {{ alert.title }}", encoding="utf-8")
    data = {"channels": {"out": {"kind": "console", "template": {"file": "templates/db.md.j2"}}}}
    template = _config(host, tmp_path, data).channels["out"].template
    assert template.name == str(tmp_path / "templates" / "db.md.j2")
    assert template.render(context(Alert(title="x"))) == "F x"


def test_template_and_render_mistakes_are_reported_together(host, tmp_path: Path) -> None:
    (tmp_path / "bad.j2").write_text("line one\n{{ alert.title }", encoding="utf-8")
    data = {
        "render": {"timezone": "Mars/Olympus", "colour": "red"},
        "channels": {
            "a": {"kind": "console", "template": {"file": "missing.j2"}},
            "b": {"kind": "console", "template": "{{ alert.title }}"},
            "c": {"kind": "console", "template": {"file": "bad.j2"}},
            "d": {"kind": "console", "template": {"text": "x", "file": "y"}},
            "e": {"kind": "console", "mention_labels": "owner"},
        },
    }
    with pytest.raises(ConfigError) as caught:
        _config(host, tmp_path, data)
    found = {issue.path: issue.expected for issue in caught.value.issues}
    assert "an IANA time zone" in found["render.timezone"]
    assert "no such key" in found["render.colour"]
    assert "missing.j2 not found" in found["channels.a.template.file"]
    assert found["channels.b.template"].startswith('a table { file = "templates/NAME.j2" }')
    assert f"{tmp_path / 'bad.j2'}:2:" in found["channels.c.template"]
    assert "channels.d.template" in found
    assert "a list of label names" in found["channels.e.mention_labels"]


def test_a_configuration_without_templates_never_loads_jinja2(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "n.toml"
    config.write_text('[channels.out]\nkind = "console"\n', encoding="utf-8")
    script = (
        "import sys\n"
        "from notifier import Alert, Dispatcher\n"
        f"with Dispatcher.from_config({str(config)!r}) as d:\n"
        "    d.dispatch(Alert(title='x'))\n"
        "print('jinja2' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False"


def _shown_new_form(host: PluginHost, tmp_path: Path, template: object) -> str:
    """The Jinja2 template the configuration error offers for an old-style one."""
    hook = {"kind": "webhook", "url": "http://127.0.0.1:9/x", "template": template}
    with pytest.raises(ConfigError) as caught:
        _config(host, tmp_path, {"channels": {"hook": hook}})
    (issue,) = caught.value.issues
    assert issue.path == "channels.hook.template"
    assert "${...} placeholders are no longer supported" in issue.expected
    return issue.expected.split("template = { text = '", 1)[1].rsplit("' }", 1)[0]


def test_an_old_style_time_inside_a_string_is_sent_as_before(host, tmp_path: Path) -> None:
    new = _shown_new_form(host, tmp_path, '{"m": "since ${starts_at}", "at": "${starts_at}"}')
    values = context(Alert(title="x", starts_at=AT))
    sent = MessageTemplate.compile(new, "hook").render(values, "json")
    # what the ${...} form sent: the alert's times as ISO 8601, in a string or alone
    assert json.loads(sent) == {
        "m": "since 2026-01-01T00:30:00+00:00",
        "at": "2026-01-01T00:30:00+00:00",
    }


def test_old_placeholders_moved_into_a_template_table_are_shown_in_the_new_form(
    host, tmp_path: Path
) -> None:
    new = _shown_new_form(host, tmp_path, {"text": '{"text": "${title}", "labels": ${labels}}'})
    assert new == '{"text": {{ alert.title | tojson }}, "labels": {{ alert.labels | tojson }}}'
    # A Jinja2 template may still contain "${" as text.
    data = {"channels": {"out": {"kind": "console", "template": {"text": "${{ alert.title }}"}}}}
    assert _config(host, tmp_path, data).channels["out"].template is not None


def test_the_docs_name_everything_a_template_sees() -> None:
    """docs/templates.md lists every name, field and filter (like datasette's hook docs)."""
    import jinja2

    from notifier.templates import FILTERS, _environment

    doc = (Path(__file__).resolve().parents[2] / "docs" / "templates.md").read_text("utf-8")
    values = context(Alert(title="x", starts_at=AT))
    names = [f"`{name}`" for name in values if name not in ("alert", "group")]
    names += [f"`alert.{name}`" for name in values["alert"]]
    names += [f"`group.{name}`" for name in values["group"]]
    ours = set(_environment(False).filters) - set(jinja2.Environment().filters)
    assert set(FILTERS) < ours
    names += [f"| `{name}" for name in ours]  # a row of the filter table
    missing = [name for name in names if name not in doc]
    assert missing == []
