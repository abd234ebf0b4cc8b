"""The built-in channels: console, jsonl and webhook (against a real local server)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from notifier import Alert, Dispatcher
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.models import Outcome
from notifier.plugins import PluginHost
from notifier.testing.server import LocalServer, Response


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.from_plugins([])


def _dispatcher(host: PluginHost, channels: dict, tmp_path: Path) -> Dispatcher:
    return Dispatcher(parse_config({"channels": channels}, host, base_dir=tmp_path), host=host)


def test_console_prints_the_rendered_alert_with_mentions(host, tmp_path, capsys) -> None:
    config = parse_config(
        {
            "channels": {"tty": {"kind": "console"}},
            "routes": [{"channels": ["tty"], "mentions": ["@all"]}],
        },
        host,
    )
    with Dispatcher(config, host=host) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="cpu hot", status="resolved"))
    out = capsys.readouterr().out
    assert receipt.ok and "[tty] [RESOLVED] cpu hot" in out and "@all" in out


def test_jsonl_appends_whole_lines_under_concurrency(host, tmp_path) -> None:
    with _dispatcher(host, {"audit": {"kind": "jsonl", "path": "out/a.jsonl"}}, tmp_path) as d:
        threads = [
            threading.Thread(
                target=d.dispatch_many, args=([Alert(title=f"t{i}-{j}") for j in range(25)],)
            )
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = (tmp_path / "out" / "a.jsonl").read_text().splitlines()
    titles = sorted(json.loads(line)["alert"]["title"] for line in lines)
    assert titles == sorted(f"t{i}-{j}" for i in range(4) for j in range(25))


def test_jsonl_unwritable_path_is_a_retryable_failure(host, tmp_path) -> None:
    (tmp_path / "blocker").write_text("a file, not a directory")
    with _dispatcher(host, {"a": {"kind": "jsonl", "path": "blocker/a.jsonl"}}, tmp_path) as d:
        (receipt,) = d.dispatch(Alert(title="x"))
    assert receipt.outcome is Outcome.FAILED and receipt.details["retryable"] is True
    assert "cannot append to" in (receipt.error or "")


@pytest.fixture
def server():
    with LocalServer() as server:
        server.route("POST", "/in/alerts", lambda request: {"id": 7})
        yield server


def test_webhook_posts_the_alert_with_an_idempotency_key(host, tmp_path, server) -> None:
    url = f"{server.url}/in/alerts?token=abcd1234"
    channels = {"hook": {"kind": "webhook", "url": url, "headers": {"X-Team": "sre"}}}
    with _dispatcher(host, channels, tmp_path) as dispatcher:
        alert = Alert(title="db down", labels={"team": "db"})
        first, again = dispatcher.dispatch(alert), dispatcher.dispatch(alert)
    assert first[0].ok and first[0].message_id == "7"
    one, two = server.requests_to("/in/alerts")
    body = one.json()
    assert body["title"] == "db down" and body["labels"] == {"team": "db"} and body["text"]
    assert one.query["token"] == "abcd1234" and one.header("x-team") == "sre"
    assert one.header("idempotency-key") == two.header("idempotency-key") != ""
    assert again[0].ok


def test_webhook_template_renders_the_json_body_with_jinja2(host, tmp_path, server) -> None:
    template = (
        '{"msg": "{{ alert.title | escape_json }}: {{ alert.body | escape_json }}",'
        ' "sev": {{ alert.severity | tojson }}, "labels": {{ alert.labels | tojson }}}'
    )
    url = f"{server.url}/in/alerts"
    channels = {"hook": {"kind": "webhook", "url": url, "template": {"text": template}}}
    with _dispatcher(host, channels, tmp_path) as dispatcher:
        dispatcher.dispatch(Alert(title='say "hi"', body="line1\nline2", labels={"a": "b"}))
    assert server.requests[0].json() == {
        "msg": 'say "hi": line1\nline2',
        "sev": "warning",
        "labels": {"a": "b"},
    }


def test_an_old_style_webhook_template_is_a_config_error_showing_the_new_form(
    host, tmp_path, server
) -> None:
    old = '{"msg": "${title}: ${body}", "sev": "${severity}", "labels": ${labels}}'
    url = f"{server.url}/in/alerts"
    with pytest.raises(ConfigError) as caught:
        _dispatcher(host, {"hook": {"kind": "webhook", "url": url, "template": old}}, tmp_path)
    (issue,) = caught.value.issues
    assert issue.path == "channels.hook.template"
    assert "${...} placeholders are no longer supported" in issue.expected
    new = issue.expected.split("template = { text = '", 1)[1].rsplit("' }", 1)[0]
    assert "{{ alert.title | escape_json }}" in new
    # The form shown is a working template that sends what the old one sent.
    channels = {"hook": {"kind": "webhook", "url": url, "template": {"text": new}}}
    with _dispatcher(host, channels, tmp_path) as dispatcher:
        dispatcher.dispatch(Alert(title='say "hi"', body="line1\nline2", labels={"a": "b"}))
    assert server.requests[0].json() == {
        "msg": 'say "hi": line1\nline2',
        "sev": "warning",
        "labels": {"a": "b"},
    }


def test_a_webhook_template_syntax_error_is_a_config_error_with_its_line(host, tmp_path) -> None:
    template = {"text": '{\n"t": {{ alert.title | tojson }\n}'}
    channels = {"hook": {"kind": "webhook", "url": "http://127.0.0.1:9/x", "template": template}}
    with pytest.raises(ConfigError) as caught:
        _dispatcher(host, channels, tmp_path)
    (issue,) = caught.value.issues
    assert issue.path == "channels.hook.template"
    assert "channels.hook.template:2:" in issue.expected


def test_a_webhook_template_whose_output_is_not_json_fails_the_delivery_for_good(
    host, tmp_path, server
) -> None:
    template = {"text": '{"t": {{ alert.title }}}'}
    url = f"{server.url}/in/alerts"
    channels = {"hook": {"kind": "webhook", "url": url, "template": template}}
    with _dispatcher(host, channels, tmp_path) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="db down"))
    assert receipt.outcome is Outcome.FAILED and receipt.next_attempt_at is None
    assert "template channels.hook.template: the output is not JSON" in (receipt.error or "")
    assert server.requests == []


def test_webhook_server_errors_fail_with_the_status(host, tmp_path, server) -> None:
    server.route("POST", "/in/alerts", lambda request: Response(status=400, body=b"no"))
    channels = {"hook": {"kind": "webhook", "url": f"{server.url}/in/alerts"}}
    with _dispatcher(host, channels, tmp_path) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="x"))
    assert receipt.outcome is Outcome.FAILED and "400" in (receipt.error or "")
    assert receipt.details["retryable"] is False


def test_webhook_rejects_a_non_http_url(host, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"channels\.hook\.url: an http:// or https:// URL"):
        _dispatcher(host, {"hook": {"kind": "webhook", "url": "ftp://x/y"}}, tmp_path)
