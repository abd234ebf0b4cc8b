"""A template that renders over the provider's limit obeys the channel's ``overflow``,
and a kind that cannot preview says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier import Alert, hookimpl
from notifier.config import parse_config
from notifier.dispatcher import Dispatcher
from notifier.errors import UnsupportedOperation
from notifier.kinds import ChannelKind
from notifier.plugins import PluginHost
from notifier.render import TRUNCATION_MARKER

OFFLINE = "http://127.0.0.1:9/"
LONG = {"text": "{% for i in range(3000) %}告警🚨{% endfor %}"}  # 3000 x 10 bytes


def _preview(host: PluginHost, channel: dict, tmp_path: Path):
    config = parse_config(
        {"channels": {"c": {**channel, "template": LONG}}}, host, "t", {}, tmp_path
    )
    with Dispatcher(config, host=host) as dispatcher:
        return dispatcher.preview("c", Alert(title="x"))


@pytest.mark.parametrize(
    ("channel", "limit"),
    [
        ({"kind": "dingtalk-robot", "access_token": "t", "api_root": OFFLINE}, 20000),
        ({"kind": "wework-robot", "key": "k", "api_root": OFFLINE}, 2048),
    ],
)
def test_a_long_cjk_template_is_truncated_on_a_character_boundary(
    channel: dict, limit: int, tmp_path: Path
) -> None:
    (part,) = _preview(PluginHost.load(), channel, tmp_path)
    assert part.limit == limit and part.size <= limit
    assert part.content.endswith(TRUNCATION_MARKER)
    body = part.content.removesuffix(TRUNCATION_MARKER)
    assert ("告警🚨" * 3000).startswith(body) and len(body) > 100  # cut between characters


class NoPreview:
    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        return [ChannelKind("plain", build=lambda spec, context: object())]


def test_a_kind_without_preview_is_named_when_asked_to_render(tmp_path: Path) -> None:
    host = PluginHost.from_plugins([NoPreview()])
    config = parse_config({"channels": {"p": {"kind": "plain"}}}, host, "t", {}, tmp_path)
    with (
        Dispatcher(config, host=host) as dispatcher,
        pytest.raises(UnsupportedOperation, match="kind 'plain', which cannot show"),
    ):
        dispatcher.preview("p", Alert(title="x"))
