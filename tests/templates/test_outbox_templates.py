"""Deliveries through the durable outbox render the same template, route template and
label mentions as direct ones: the outbox stores the alert, the template is found again
from the configuration when the delivery runs."""

from __future__ import annotations

import json
from pathlib import Path

from notifier import Alert, Dispatcher
from notifier.models import Outcome
from notifier.plugins import PluginHost


def test_an_outbox_delivery_uses_the_route_template_and_label_mentions(tmp_path: Path) -> None:
    config = tmp_path / "notifier.toml"
    config.write_text(
        """
[channels.audit]
kind = "jsonl"
path = "audit.jsonl"
template = { text = "channel {{ alert.title }}" }
mention_labels = ["oncall"]

[[routes]]
labels = { team = "db" }
channels = ["audit"]
mention_labels = ["owner"]
template = { text = "route {{ alert.title }} for {{ mentions | join(',') }}" }

[outbox]
path = "outbox.db"
""",
        encoding="utf-8",
    )
    alert = Alert(title="db down", labels={"team": "db", "owner": "zhangsan", "oncall": "lisi"})
    with Dispatcher.from_config(config, host=PluginHost.load()) as dispatcher:
        assert dispatcher.outbox is not None
        (receipt,) = dispatcher.dispatch(alert)
    assert receipt.outcome is Outcome.DELIVERED, receipt
    record = json.loads((tmp_path / "audit.jsonl").read_text(encoding="utf-8"))
    assert record["message"] == "route db down for zhangsan,lisi"
    assert record["mentions"] == ["zhangsan", "lisi"]
