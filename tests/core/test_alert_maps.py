"""Labels and annotations: text to text, numbers written as text, anything else refused."""

from __future__ import annotations

import pytest

from notifier.alertmanager import alert_from_alertmanager
from notifier.models import Alert


def test_text_maps_are_kept_as_given_and_copied():
    labels = {"alertname": "Disk", "a\x00b": "", "zh": "磁盘"}
    alert = Alert(title="x", labels=labels)
    assert alert.labels == labels and alert.labels is not labels


def test_numbers_become_text_in_keys_and_values():
    alert = Alert(title="x", labels={"n": 1, 2: 2.5}, annotations={"ok": "yes"})  # type: ignore[dict-item]
    assert alert.labels == {"n": "1", "2": "2.5"}


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ({"host": "bad \ud800"}, r"labels\['host'\] holds a lone surrogate \(U\+D800\)"),
        ({"bad \udfff": "x"}, r"a key of labels holds a lone surrogate \(U\+DFFF\)"),
        ({"host": ["a"]}, r"labels must map text to text, got list at 'host'"),
        ({"host": None}, r"labels must map text to text, got NoneType at 'host'"),
    ],
)
def test_what_is_not_text_is_named(labels, error):
    with pytest.raises((TypeError, ValueError), match=error):
        Alert(title="x", labels=labels)


def test_alertmanager_labels_as_sent_and_with_numbers():
    data = {"status": "firing", "labels": {"alertname": "A", "code": 500},
            "annotations": {"summary": "s"}, "startsAt": "2026-12-01T10:00:00Z"}  # fmt: skip
    alert = alert_from_alertmanager(data)
    assert alert.labels == {"alertname": "A", "code": "500"}
    data["labels"] = {"alertname": "A", "host": "bad \ud800"}
    with pytest.raises(ValueError, match="lone surrogate"):
        alert_from_alertmanager(data)
