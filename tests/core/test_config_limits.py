"""Every count and duration in a configuration has a documented maximum, and is finite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.config import (
    _CHANNEL_TIMEOUT,
    _DISPATCHER_OPTIONS,
    _RATE_COUNT,
    _RATE_PER,
    load_config,
)
from notifier.errors import ConfigError
from notifier.http.options import HTTP_OPTIONS
from notifier.outbox.settings import OPTIONS as OUTBOX_OPTIONS
from notifier.plugins import PluginHost

ROOT = Path(__file__).parents[2]
HOOK = '[channels.hook]\nkind = "webhook"\nurl = "https://hooks.example.com/alerts"\n'


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.from_plugins([])


def _issues(tmp_path: Path, text: str, host: PluginHost) -> list[str]:
    path = tmp_path / "notifier.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, host, env={})
    return [f"{i.path} | {i.expected}" for i in caught.value.issues]


TOO_BIG = {
    "dispatcher.workers": ("[dispatcher]\nworkers = 9223372036854775807\n", "<= 256"),
    "dispatcher.delivery_timeout": ("[dispatcher]\ndelivery_timeout = 1e12\n", "<= 3600"),
    "channels.hook.delivery_timeout": (HOOK + "delivery_timeout = 86400\n", "<= 3600"),
    "channels.hook.rate_limit.count": (
        HOOK + "rate_limit = { count = 1000000000, per = 60 }\n",
        "<= 100000",
    ),
    "channels.hook.rate_limit.per": (
        HOOK + "rate_limit = { count = 1, per = 1e300 }\n",
        "<= 86400",
    ),
    "channels.hook.connect_timeout": (HOOK + "connect_timeout = 1e9\n", "<= 600"),
    "channels.hook.read_timeout": (HOOK + "read_timeout = 3601\n", "<= 600"),
    "channels.hook.max_attempts": (HOOK + "max_attempts = 1000000\n", "<= 20"),
    "outbox.lease": ("[outbox]\nlease = 1e15\n", "<= 86400"),
    "outbox.poll_interval": ('[outbox]\npath = ":memory:"\npoll_interval = 1e9\n', "<= 3600"),
    "outbox.breaker_threshold": ("[outbox]\nbreaker_threshold = 99999999\n", "<= 10000"),
}


@pytest.mark.parametrize(("text", "bound"), TOO_BIG.values(), ids=TOO_BIG.keys())
def test_a_number_above_its_maximum_is_reported_with_its_key_path(
    tmp_path: Path, host: PluginHost, request: pytest.FixtureRequest, text: str, bound: str
) -> None:
    key = request.node.callspec.id
    [issue] = _issues(tmp_path, text, host)
    assert issue.startswith(f"{key} | expected ")
    assert bound in issue


NOT_FINITE = {
    "dispatcher.delivery_timeout": "[dispatcher]\ndelivery_timeout = nan\n",
    "channels.hook.delivery_timeout": HOOK + "delivery_timeout = nan\n",
    "channels.hook.rate_limit.per": HOOK + "rate_limit = { count = 5, per = nan }\n",
    "channels.hook.connect_timeout": HOOK + "connect_timeout = nan\n",
    "channels.hook.read_timeout": HOOK + "read_timeout = inf\n",
}


@pytest.mark.parametrize("text", NOT_FINITE.values(), ids=NOT_FINITE.keys())
def test_nan_and_infinity_are_not_durations(
    tmp_path: Path, host: PluginHost, request: pytest.FixtureRequest, text: str
) -> None:
    key = request.node.callspec.id
    [issue] = _issues(tmp_path, text, host)
    assert issue.startswith(f"{key} | expected a number >= ")


def test_a_nan_from_the_environment_is_refused_too(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "notifier.toml"
    path.write_text('[dispatcher]\ndelivery_timeout = { env = "TIMEOUT" }\n')
    with pytest.raises(
        ConfigError,
        match=r"delivery_timeout: expected a number >= 0\.001 and <= 3600, got number nan",
    ):
        load_config(path, host, env={"TIMEOUT": "nan"})


def test_the_largest_allowed_values_are_accepted(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "notifier.toml"
    path.write_text(
        HOOK
        + "rate_limit = { count = 100000, per = 86400 }\ndelivery_timeout = 3600\n"
        + "connect_timeout = 600\nread_timeout = 600\nmax_attempts = 20\n"
        + "[dispatcher]\nworkers = 256\ndelivery_timeout = 3600\n"
    )
    config = load_config(path, host, env={})
    assert config.dispatcher.workers == 256
    assert config.channels["hook"].timeout == 3600


def _limits_table() -> dict[str, tuple[str, str]]:
    docs = (ROOT / "docs" / "configuration.md").read_text()
    section = docs.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$", section, re.MULTILINE)
    return {key: (low.strip(), high.split()[0]) for key, low, high in rows}


NUMBERS = [
    *(("dispatcher", o) for o in _DISPATCHER_OPTIONS),
    *(("channels.<name>", o) for o in HTTP_OPTIONS),
    *(("outbox", o) for o in OUTBOX_OPTIONS),
    ("channels.<name>", _CHANNEL_TIMEOUT),
    ("channels.<name>.rate_limit", _RATE_COUNT),
    ("channels.<name>.rate_limit", _RATE_PER),
]


@pytest.mark.parametrize(
    ("where", "option"),
    [(w, o) for w, o in NUMBERS if o.type in (int, float)],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_every_count_and_duration_has_a_maximum_that_the_docs_give(where, option) -> None:
    assert option.maximum is not None
    low, high = _limits_table()[f"{where}.{option.name}"]
    assert (float(low), float(high)) == (option.minimum, option.maximum)


@pytest.mark.slow
def test_check_refuses_a_worker_count_that_would_hang_the_process(tmp_path: Path) -> None:
    config = tmp_path / "notifier.toml"
    config.write_text(
        '[channels.audit]\nkind = "jsonl"\npath = "a.jsonl"\n'
        "[dispatcher]\nworkers = 9223372036854775807\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    result = subprocess.run(
        [sys.executable, "-m", "notifier", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        f"{config}: dispatcher.workers: expected an integer >= 1 and <= 256, "
        "got number 9223372036854775807"
    ) in result.stderr
