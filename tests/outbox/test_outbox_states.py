"""Delivery states are named in one place, :class:`DeliveryState`: the outbox's SQL may
only speak of those."""

from __future__ import annotations

import re
from pathlib import Path

import notifier.outbox
from notifier.outbox import DeliveryState

# "state = 'x'", "state IN ('x', 'y')", "state != 'x'", "SET state = 'x'"
_STATE_TEST = re.compile(r"state\s*(?:=|!=|<>|IN)\s*\(?\s*((?:'[^']*'\s*,?\s*)+)")


def test_every_state_in_the_outbox_sql_is_a_delivery_state() -> None:
    named: dict[str, set[str]] = {}
    for path in sorted(Path(notifier.outbox.__file__).parent.glob("*.py")):
        for match in _STATE_TEST.finditer(path.read_text(encoding="utf-8")):
            for state in re.findall(r"'([^']*)'", match.group(1)):
                named.setdefault(state, set()).add(path.name)
    assert {"pending", "inflight", "delivered", "dead"} <= set(named)
    unknown = {s: files for s, files in named.items() if s not in set(DeliveryState)}
    assert not unknown, f"states not in DeliveryState: {unknown}"
