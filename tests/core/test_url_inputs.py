"""URLs that Python's own URL parser refuses (a bracketed host that is no IP address) are
bad input at the boundary: an alert link is an invalid alert, a URL option is a config
error naming its key; neither gets as far as a channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import load_config
from notifier.dispatcher import Dispatcher
from notifier.errors import ConfigError, InvalidAlert
from notifier.models import Alert
from notifier.plugins import PluginHost

UNPARSEABLE = ["http://[::1", "http://[::1/x", "http://][", "https://[example.com]/x"]


@pytest.mark.parametrize("url", UNPARSEABLE)
def test_an_alert_link_that_is_no_url_is_an_invalid_alert(url: str) -> None:
    with pytest.raises(InvalidAlert, match="link's url is not a URL"):
        Alert.from_dict({"title": "disk full", "links": [url]})
    with pytest.raises(InvalidAlert, match="link's url is not a URL"):
        Alert.from_dict({"title": "disk full", "links": [{"url": url, "title": "graph"}]})


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.load()


URL_OPTIONS = {
    "webhook": ("url", {}),
    "slack": ("url", {}),
    "feishu-bot": ("url", {}),
    "wework-robot": ("api_root", {"key": "k"}),
    "dingtalk-robot": ("api_root", {"access_token": "t"}),
    "dingtalk-robot access_token": ("access_token", {}),
    "wework": ("api_root", {"corp_id": "c", "secret": "s", "agent_id": 1, "to_user": ["a"]}),
}


@pytest.mark.parametrize("url", UNPARSEABLE[1:3])
@pytest.mark.parametrize("case", URL_OPTIONS)
def test_a_url_option_that_is_no_url_is_a_config_error_naming_its_key(
    host: PluginHost, tmp_path: Path, case: str, url: str
) -> None:
    kind = case.split()[0]
    option, others = URL_OPTIONS[case]
    if kind not in host.kinds:
        pytest.skip(f"{kind} is not installed")
    lines = [f'kind = "{kind}"', f'{option} = "{url}"']
    for key, value in others.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    config = tmp_path / "n.toml"
    config.write_text("[channels.x]\n" + "\n".join(lines) + "\n")
    # What `notifier check` does: load the file, then build every channel.
    with pytest.raises(ConfigError) as caught, Dispatcher(load_config(config, host), host=host):
        pass
    paths = [issue.path for issue in caught.value.issues]
    assert paths == [f"channels.x.{option}"], caught.value
    assert url not in str(caught.value)  # a URL option is a secret: never echoed
