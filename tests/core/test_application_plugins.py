"""An application registers its own plugin objects, without an entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from notifier import Alert, Dispatcher, hookimpl
from notifier.kinds import ChannelKind
from notifier.models import Receipt, SendResult
from notifier.plugins import PluginHost

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.toml"


class Memo:
    """A kind and an observer in one object."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.finished: list[Receipt] = []

    @hookimpl
    def notifier_channel_kinds(self) -> list[ChannelKind]:
        return [ChannelKind("app-memo", lambda spec, ctx: self)]

    @hookimpl
    def notifier_send(self, channel: object, alert: Alert) -> SendResult | None:
        if channel is not self:
            return None
        self.sent.append(alert.title)
        return SendResult(message_id=f"memo-{len(self.sent)}")

    @hookimpl
    def notifier_delivery_finished(self, alert: Alert, receipt: Receipt) -> None:
        self.finished.append(receipt)


def test_from_config_registers_the_applications_plugin_objects(tmp_path: Path):
    config = tmp_path / "app.toml"
    config.write_text('[channels.memo]\nkind = "app-memo"\n', encoding="utf-8")
    memo = Memo()
    with Dispatcher.from_config(config, plugins=[memo], env={}) as dispatcher:
        (receipt,) = dispatcher.dispatch(Alert(title="disk full"))
    assert receipt.ok and receipt.message_id == "memo-1"
    assert memo.sent == ["disk full"]
    assert [r.channel for r in memo.finished] == ["memo"]


def test_an_observer_object_sees_the_installed_kinds_deliveries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    shutil.copy(QUICKSTART, tmp_path / "quickstart.toml")
    memo = Memo()
    with Dispatcher.from_config(tmp_path / "quickstart.toml", plugins=[memo], env={}) as d:
        d.dispatch(Alert(title="Backup finished", severity="info"))
    assert sorted(r.channel for r in memo.finished) == ["audit", "terminal"]


def test_plugins_and_a_host_together_are_refused(tmp_path: Path):
    with pytest.raises(TypeError, match="not both"):
        Dispatcher.from_config(
            tmp_path / "x.toml", host=PluginHost.from_plugins([]), plugins=[Memo()]
        )
