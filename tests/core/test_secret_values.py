"""Secrets as values: kept out of reprs and config errors, masked where they stand as
values, and ordinary words left alone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from notifier import Alert, Dispatcher
from notifier import redact as redact_module
from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.kinds import BuildContext
from notifier.plugins import PluginHost
from notifier.redact import Secret, redact
from notifier.testing.leaks import LogCapture
from notifier.testing.server import LocalServer, Response

BEARER = "Bearer hdr-credential-5150"
URL_TOKEN = "qtok-77aa99bb"


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.from_plugins([])


@pytest.fixture
def registry(monkeypatch):
    """Secrets registered by the test are forgotten afterwards, so short test words do
    not stay masked for the rest of the run."""
    for name in ("_values", "_pattern", "_value_pattern"):
        value = getattr(redact_module, name, None)
        copy = set(value) if isinstance(value, set) else value
        monkeypatch.setattr(redact_module, name, copy, raising=False)


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


def test_webhook_headers_and_url_token_never_show_in_reprs(host, server) -> None:
    table = {
        "kind": "webhook",
        "url": f"{server.url}/in/hook?token={URL_TOKEN}",
        "headers": {"Authorization": BEARER},
    }
    config = parse_config({"channels": {"hook": table}}, host)
    spec = config.channels["hook"]
    channel = host.kinds["webhook"].build(spec, BuildContext())
    try:
        shown = {
            "config": repr(config),
            "spec": repr(spec),
            "options": repr(spec.options),
            "channel": repr(channel) + str(channel),
        }
    finally:
        channel.close()
    for where, text in shown.items():
        assert "hdr-credential-5150" not in text, where
        assert URL_TOKEN not in text, where
    assert isinstance(spec.options["headers"]["Authorization"], Secret)

    # The header still reaches the receiver as written.
    server.route("POST", "/in/hook", lambda request: Response(body=b"{}"))
    with Dispatcher(config, host=host) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="x"))
    assert receipt.ok, receipt
    assert server.requests[0].header("authorization") == BEARER


def test_header_values_from_the_environment_are_secrets_too(host) -> None:
    table = {
        "kind": "webhook",
        "url": "http://127.0.0.1:9/x",
        "headers": {"Authorization": {"env": "HOOK_AUTH"}},
    }
    spec = parse_config({"channels": {"hook": table}}, host, env={"HOOK_AUTH": BEARER}).channels[
        "hook"
    ]
    assert spec.options["headers"]["Authorization"].reveal() == BEARER
    assert "hdr-credential" not in repr(spec)


@pytest.mark.parametrize("value", [987654321012, 98765.4321, True])
def test_a_secret_of_the_wrong_type_is_not_echoed_in_the_config_error(host, value) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"hook": {"kind": "webhook", "url": value}}}, host)
    (issue,) = caught.value.issues
    text = str(caught.value)
    assert issue.path == "channels.hook.url"
    assert "expected a string, got a " in issue.expected
    assert str(value) not in text and str(value).lower() not in text


def test_a_plain_option_of_the_wrong_type_still_shows_what_was_given(host) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"channels": {"hook": {"kind": "webhook", "url": "http://h/x", "method": 7}}}, host
        )
    assert "got number 7" in str(caught.value)


def test_a_short_secret_is_masked_as_a_value_but_not_inside_prose(registry) -> None:
    Secret("disk")  # a robot key that is also a word
    Secret("alerts")  # the path of a webhook URL ending in /alerts
    prose = "failed 'disk alerts backlog on db-1': diskette alertsmanager"
    assert redact(prose) == prose
    assert redact("POST /alerts?x=1 HTTP/1.1") == "POST /***?x=1 HTTP/1.1"
    assert redact("https://h.example/send?robot=disk&n=1") == "https://h.example/send?robot=***&n=1"
    assert redact("https://bot:disk@h.example/") == "https://bot:***@h.example/"
    assert (
        redact('{"robot": "disk", "text": "disk full"}') == '{"robot": "***", "text": "disk full"}'
    )
    assert redact("{'X-Robot': 'disk'}") == "{'X-Robot': '***'}"
    assert redact("Authorization: Bearer disk") == "Authorization: Bearer ***"


def test_a_long_or_random_looking_secret_is_masked_everywhere(registry) -> None:
    Secret("k9-Zx7")  # short but not a word: still only 6 characters, so value positions
    Secret("rk-5f3e2d1c")  # 8+ characters, not all letters
    Secret("averyveryplainsecretword")  # 16+ characters
    text = "key rk-5f3e2d1c in prose, glued:xrk-5f3e2d1cx, averyveryplainsecretword said"
    assert redact(text) == "key *** in prose, glued:x***x, *** said"
    assert redact("see k9-Zx7 here, or /k9-Zx7") == "see k9-Zx7 here, or /***"


def test_a_webhook_url_ending_in_a_word_leaves_that_word_in_logs(
    host, server, tmp_path: Path, registry
) -> None:
    server.route("POST", "/alerts", lambda request: Response(status=503, body=b"busy"))
    channels = {"hook": {"kind": "webhook", "url": f"{server.url}/alerts", "max_attempts": 1}}
    config = parse_config({"channels": channels}, host, base_dir=tmp_path)
    with LogCapture() as logs, Dispatcher(config, host=host) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="x"))
        for name in ("notifier", "notifier.dispatcher"):
            logging.getLogger(name).warning("failed %r", "disk alerts backlog on db-1")
    assert not receipt.ok
    assert logs.text.count("failed 'disk alerts backlog on db-1'") == 2
    # urllib3's request line shows the secret URL's path, masked.
    assert '"POST /*** HTTP/1.1" 503' in logs.text
    assert "/alerts" not in logs.text


def test_every_notifier_logger_masks_secrets_in_a_library_without_logging_set_up(
    host, tmp_path: Path
) -> None:
    """A logger's own filters never see its children's records: each ``notifier.*``
    logger, a plugin's included, masks on its own."""
    plugin_log = logging.getLogger("notifier.someplugin")
    key = "-".join(("lib", "secret", "4242aa"))  # not in the traceback's source lines
    Secret(key)
    Dispatcher(parse_config({}, host, base_dir=tmp_path), host=host).close()
    with LogCapture() as logs:
        for name in ("notifier.dispatcher", "notifier.outbox", "notifier.someplugin"):
            logging.getLogger(name).warning("raised: bad key %s", key)
        try:
            raise ValueError(f"bad key {key}")
        except ValueError:
            plugin_log.exception("send failed")
    assert logs.text.count("bad key ***") == 4, logs.text
    assert key not in logs.text
