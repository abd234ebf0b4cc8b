"""Alertmanager's usual alerts are checked once as they are read (``Alert.from_checked``):
the alert is the one ``Alert(...)`` builds, and anything unusual still gets
``Alert(...)``'s checks and messages."""

from __future__ import annotations

import attrs
import pytest

from notifier import alertmanager
from notifier.alertmanager import alert_from_alertmanager
from notifier.groups import AlertGroup
from notifier.messages import group_message
from notifier.models import Alert
from tests.server.samples import am_alert


def _checked_by_alert(entry: dict, monkeypatch: pytest.MonkeyPatch) -> Alert:
    with monkeypatch.context() as patch:
        patch.setattr(alertmanager, "_usual", lambda *args: None)
        return alert_from_alertmanager(entry)


@pytest.mark.parametrize(
    "entry",
    [
        am_alert(1),
        am_alert(2, "resolved"),
        {**am_alert(3), "generatorURL": ""},
        {**am_alert(4), "labels": {"alertname": "Ünïcode ✓", "severity": "INFO"}},
        {**am_alert(5), "annotations": {}},
        {**am_alert(6), "labels": {"alertname": "X", "severity": "page-me"}},
    ],
)
def test_a_usual_alert_is_read_in_one_pass_into_the_alert_alert_would_build(entry, monkeypatch):
    labels, annotations = dict(entry["labels"]), dict(entry["annotations"])
    title = annotations.get("summary") or labels.get("alertname") or "alert"
    severity = labels.get("severity", "warning").lower()
    quick = alertmanager._usual(entry, labels, annotations, title, severity, None, "")
    assert quick is not None  # the one-pass path is the one taken
    read = alert_from_alertmanager(entry)
    assert read == _checked_by_alert(entry, monkeypatch)
    assert attrs.asdict(read) == attrs.asdict(_checked_by_alert(entry, monkeypatch))


@pytest.mark.parametrize(
    "entry",
    [
        {**am_alert(1), "fingerprint": ""},  # computed by Alert
        {**am_alert(2), "fingerprint": 12345},
        {**am_alert(3), "startsAt": "2026-12-01T12:00:00+02:00"},
        {**am_alert(4), "startsAt": "2026-12-01T10:00:00"},
        {**am_alert(5), "labels": {"alertname": "X", "port": 8080}},
    ],
)
def test_an_unusual_alert_is_read_as_before(entry, monkeypatch):
    assert alert_from_alertmanager(entry) == _checked_by_alert(entry, monkeypatch)


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({**am_alert(1), "labels": {"alertname": "bad \ud800"}}, "lone surrogate"),
        ({**am_alert(2), "fingerprint": "fp-\udfff"}, "lone surrogate"),
        ({**am_alert(3), "startsAt": "yesterday"}, "ISO 8601"),
        ({**am_alert(4), "endsAt": "soon"}, "ISO 8601"),
        ({**am_alert(5), "annotations": {"summary": "  "}, "labels": {}}, "non-empty title"),
        ({**am_alert(6), "generatorURL": "http://[::1"}, "not a URL"),
        ({**am_alert(7), "status": "pending"}, "'firing' or 'resolved'"),
    ],
)
def test_what_alert_refuses_is_refused_with_its_message(entry, error):
    with pytest.raises(ValueError, match=error):
        alert_from_alertmanager(entry, "alerts[0].")


def test_a_group_message_with_text_no_alert_vouched_for_is_checked():
    alert = alert_from_alertmanager(am_alert(1))
    group = AlertGroup((alert,), group_labels={"team": "bad \ud800"}, group_key="k")
    with pytest.raises(ValueError, match="lone surrogate"):
        group_message(group, (alert,))
    fine = AlertGroup((alert,), group_labels={"team": "db"}, group_key="k")
    message = group_message(fine, (alert,))
    assert message == attrs.evolve(message)  # every field set, as Alert(...) sets them
