"""Fuzzing the two places untrusted input enters: the config loader and Alert.from_dict.

Whatever comes in, only the project's own errors come out; an alert that is accepted
can be rendered, keyed and written as UTF-8 JSON, so it cannot fail on every channel.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.config import TOP_LEVEL, load_config, parse_config
from notifier.dispatcher import Dispatcher
from notifier.errors import ConfigError, NotifierError
from notifier.models import Alert, delivery_key
from notifier.plugins import PluginHost
from notifier.render import render, render_card, render_html

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Every code point, lone surrogates included (JSON's "\ud800" escape makes them).
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from([0, 1, -1, 2**63 - 1, 1e300, math.nan, math.inf, -math.inf, 1e-300]),
)
TIMES = st.sampled_from(
    ["2024-05-01T08:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "now"]
)
URLS = st.sampled_from(
    ["http://[::1", "https://[::1]:99999/x", "http://h/x?token=1", "ftp://x", "http://", "//x"]
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, TIMES, URLS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(TEXT | st.sampled_from(["url"]), inner)
    ),
    max_leaves=8,
)
ALERT_FIELDS = st.sampled_from(
    [
        *("title", "body", "severity", "labels", "annotations", "status", "fingerprint"),
        *("starts_at", "ends_at", "links", "source"),
    ]
)


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def alert_data(draw: st.DrawFn) -> Any:
    data = draw(st.dictionaries(ALERT_FIELDS | TEXT, VALUES, max_size=6))
    if draw(st.booleans()):
        data.setdefault("title", draw(TEXT | st.just("disk full")))
    if draw(st.integers(0, 4)) == 0:
        data["links"] = draw(st.lists(URLS | st.fixed_dictionaries({"url": URLS}), max_size=2))
    if draw(st.integers(0, 20)) == 0:
        data[draw(ALERT_FIELDS)] = _deep(5000)
    return data if draw(st.integers(0, 20)) else draw(VALUES)


@pytest.mark.slow
@FUZZ
@given(alert_data())
def test_alert_from_dict_raises_only_project_errors(data: Any) -> None:
    try:
        alert = Alert.from_dict(data)
    except NotifierError:
        return
    for fmt in ("text", "markdown"):
        render(alert, fmt).encode("utf-8")  # type: ignore[arg-type]
    render_html(alert).encode("utf-8")
    json.dumps(render_card(alert), ensure_ascii=False).encode("utf-8")
    json.dumps(alert.to_dict(), ensure_ascii=False).encode("utf-8")
    delivery_key(alert, "audit")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    # The bundled plugins too: their options and validate() read untrusted config.
    return PluginHost.load()


def _options(host: PluginHost) -> list[str]:
    names = {"kind", "rate_limit", "delivery_timeout", "count", "per", "env", "default"}
    for kind in host.kinds.values():
        names.update(option.name for option in kind.options)
    return sorted(names)


@st.composite
def config_data(draw: st.DrawFn, host: PluginHost) -> dict[str, Any]:
    option = st.sampled_from(_options(host)) | TEXT
    value = VALUES | URLS | st.fixed_dictionaries({"env": st.sampled_from(["X", "NOPE"])})
    channel = st.dictionaries(option, value, max_size=5)
    numeric = st.sampled_from(
        ["delivery_timeout", "connect_timeout", "read_timeout", "max_attempts", "rate_limit"]
    )
    nearly_valid = st.builds(
        lambda key, number, per: {
            "kind": "webhook",
            "url": "http://127.0.0.1:1/x",
            key: {"count": number, "per": per} if key == "rate_limit" else number,
        },
        numeric,
        NUMBERS,
        NUMBERS,
    )
    # A kind's required options, and one URL-valued option fuzzed.
    url_kinds = {
        "webhook": ("url", {}),
        "slack": ("url", {}),
        "feishu-bot": ("url", {}),
        "wework-robot": ("api_root", {"key": "k"}),
        "dingtalk-robot": ("access_token", {}),
    }
    url_options = st.sampled_from(sorted(set(url_kinds) & set(host.kinds))).flatmap(
        lambda kind: st.builds(
            lambda url: {"kind": kind, **url_kinds[kind][1], url_kinds[kind][0]: url},
            URLS | TEXT,
        )
    )
    channels = st.dictionaries(
        st.sampled_from(["a", "b", ""]) | TEXT,
        st.one_of(
            nearly_valid,
            url_options,
            channel,
            st.builds(
                lambda kind, table: {"kind": kind, **table},
                st.sampled_from(sorted(host.kinds)),
                channel,
            ),
        ),
        max_size=3,
    )
    route = st.dictionaries(
        st.sampled_from(["channels", "severity", "labels", "status", "continue", "mentions"]),
        VALUES | st.just(["a"]) | st.just(["b", "a"]),
        max_size=4,
    )
    tables = {
        "channels": channels | VALUES,
        "routes": st.lists(route, max_size=3) | VALUES,
        "dispatcher": st.dictionaries(
            st.sampled_from(["workers", "delivery_timeout"]), NUMBERS | value
        ),
        "outbox": st.dictionaries(
            st.sampled_from(["path", "workers", "lease", "max_age", "dedup_window"]) | TEXT,
            value | st.just(":memory:"),
        ),
    }
    if draw(st.booleans()):  # one channel and the dispatcher, only numbers or a URL fuzzed
        return {
            "channels": {"a": draw(nearly_valid | url_options)},
            "dispatcher": draw(
                st.dictionaries(st.sampled_from(["workers", "delivery_timeout"]), NUMBERS)
            ),
        }
    data: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from([*TOP_LEVEL, "extra"]), unique=True)):
        if key == "outbox" and draw(st.booleans()):
            data[key] = {"path": ":memory:"}
        else:
            data[key] = draw(tables.get(key, VALUES))
    return data


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_the_config_loader_raises_only_project_errors(
    data: st.DataObject, host: PluginHost, tmp_path: Path
) -> None:
    config_table = data.draw(config_data(host))
    try:
        config = parse_config(config_table, host, "fuzz.toml", {"X": "1"}, tmp_path)
        # What `notifier check` does next: build every channel.
        with Dispatcher(config, host=host):
            pass
    except NotifierError:
        return
    # Accepted numbers are usable: nothing that passes `check` fails every send.
    numbers = [config.dispatcher.delivery_timeout, config.dispatcher.workers]
    for spec in config.channels.values():
        numbers.append(spec.timeout)
        if spec.rate_limit is not None:
            numbers += [spec.rate_limit.count, spec.rate_limit.per]
        for name, value in spec.options.items():
            option = host.kinds[spec.kind].option(name)
            if isinstance(value, int | float) and option is not None and option.maximum:
                assert value <= option.maximum, (name, value)  # an option's own bound
            elif isinstance(value, int | float):
                numbers.append(value)
    assert all(math.isfinite(n) and abs(n) <= 10**6 for n in numbers), numbers


TOML_PIECES = st.sampled_from(
    [
        *("[channels.a]\n", 'kind = "webhook"\n', "url = ", '"http://[::1"\n', "a = ", "[", "]"),
        *(
            "{",
            "x = 1\n",
            "\n",
            '"\\ud800"',
            "nan\n",
            "inf\n",
            "[[routes]]\n",
            "\x00",
            "\xff",
            "='",
        ),
    ]
)


@pytest.mark.slow
@FUZZ
@given(pieces=st.lists(TOML_PIECES, max_size=12), nesting=st.sampled_from([0, 0, 3000]))
def test_any_file_gives_a_config_or_a_config_error(
    pieces: list[str], nesting: int, host: PluginHost, tmp_path: Path
) -> None:
    path = tmp_path / "fuzz.toml"
    text = "".join(pieces) + ("a = " + "[" * nesting + "]" * nesting + "\n" if nesting else "")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(ConfigError):
        load_config(path, host, env={})
