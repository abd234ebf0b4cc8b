"""``[celery]`` is validated like every other table: each problem with its key path."""

from __future__ import annotations

import pytest

from notifier.config import parse_config
from notifier.errors import ConfigError
from notifier.plugins import PluginHost

CHANNELS = {"hook": {"kind": "webhook", "url": "http://127.0.0.1:9/"}}


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.load()


def parse(host: PluginHost, celery: object, **more: object):
    return parse_config({"channels": CHANNELS, "celery": celery, **more}, host, "n.toml")


def test_the_state_defaults_to_a_redis_broker_and_the_queue_to_notifier(host):
    settings = parse(host, {"broker": "redis://127.0.0.1:6379/3"}).celery
    assert settings.state == "redis://127.0.0.1:6379/3"
    assert settings.queue == "notifier"
    assert (settings.max_attempts, settings.dedup_window) == (30, 300.0)  # the outbox's


def test_the_broker_may_come_from_the_environment(host):
    env = {"BROKER": "amqp://guest@mq:5672//", "STATE": "redis://r:6379/0"}
    table = {"broker": {"env": "BROKER"}, "state": {"env": "STATE"}}
    config = parse_config({"channels": CHANNELS, "celery": table}, host, "n.toml", env)
    assert config.celery.broker.startswith("amqp://")
    assert config.celery.state == "redis://r:6379/0"


def test_every_problem_is_reported_at_once_with_its_key_path(host):
    with pytest.raises(ConfigError) as failed:
        parse(host, {"broker": "amqp://mq//", "queue": 3, "visibility_timeout": 0, "backof": 1})
    text = str(failed.value)
    for path in ("celery.state", "celery.queue", "celery.visibility_timeout", "celery.backof"):
        assert f"n.toml: {path}:" in text
    assert "required when the broker is not Redis" in text


def test_a_broker_that_is_neither_redis_nor_rabbitmq_is_refused_without_its_password(host):
    with pytest.raises(ConfigError) as failed:
        parse(host, {"broker": "sqs://user:s3cret@queue"})
    assert "celery.broker" in str(failed.value)
    assert "s3cret" not in str(failed.value)


def test_a_missing_broker_is_named(host):
    with pytest.raises(ConfigError, match=r"celery\.broker"):
        parse(host, {})


def test_celery_and_the_outbox_together_are_refused(host):
    with pytest.raises(ConfigError, match=r"\[celery\] or \[outbox\], not both"):
        parse(host, {"broker": "redis://127.0.0.1/0"}, outbox={"path": "x.db"})


def test_settings_never_show_the_brokers_password(host):
    settings = parse(host, {"broker": "redis://:s3cret@127.0.0.1:6379/0"}).celery
    assert "s3cret" not in repr(settings)


def test_without_the_celery_extra_the_table_says_what_to_install(host, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"celery extra installed \(redis missing"):
        parse(host, {"broker": "redis://127.0.0.1/0"})


def test_the_celery_application_is_configured_from_notifier_config(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "n.toml"
    config.write_text(
        '[channels.hook]\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n\n'
        '[celery]\nbroker = "redis://127.0.0.1:6379/5"\nqueue = "alerts"\nvisibility_timeout = 60\n'
    )
    show = (
        "from notifier.celery import app; c = app.conf; "
        "print(c.broker_url, c.task_default_queue, c.task_acks_late, "
        "c.task_reject_on_worker_lost, c.broker_transport_options['visibility_timeout'], "
        "sorted(t for t in app.tasks if t.startswith('notifier')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", show],
        env={**__import__("os").environ, "NOTIFIER_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "redis://127.0.0.1:6379/5",
        "alerts",
        "True",
        "True",
        "60.0",
        "['notifier.deliver']",
    ]
