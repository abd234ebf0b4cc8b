"""A group's alerts as the messages one channel receives.

The alerts of an Alertmanager notification that reach the same channel travel as one
message: a summary alert (:func:`group_message`) whose body lists each of them, with one
silence link for the group (``externalURL`` and the group's labels), delivered with the
group itself so a channel's template sees every alert (``group``). A message over the
channel's provider limit is cut at alert boundaries into several (:func:`messages`), so
no alert is split across two. ``notifier serve`` sends these, and ``notifier render
--alertmanager`` shows them.

A message's fingerprint is made of the notification's group key and of every alert's
fingerprint and status in it, so the same notification posted again (Alertmanager
retrying after an answer it never got) is the same delivery, which the outbox
coalesces or deduplicates instead of sending twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from notifier.groups import AlertGroup
from notifier.models import SEVERITIES, Alert, Link, Status

if TYPE_CHECKING:
    from notifier.dispatcher import Dispatcher

__all__ = ["RECEIVER_LABEL", "Budgets", "group_message", "messages", "silence_url"]

# A notification's receiver, visible to route matching only (never sent).
RECEIVER_LABEL = "__receiver__"

# Labels that say least about one alert of a group: left out of each alert's line.
_QUIET_LABELS = frozenset({"alertname", "severity"})
_KEY_LABELS = 4
# Share of the provider's limit a message may fill: the channel's own layout (title,
# status, mentions, markup) takes the rest.
_FILL = 0.8


def silence_url(external_url: str, labels: Mapping[str, str]) -> str:
    """Alertmanager's "new silence" page with a matcher for every label of the alert."""
    matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{external_url.rstrip('/')}/#/silences/new?filter={quote('{' + matchers + '}')}"


def _line(alert: Alert) -> str:
    """One alert in a group's message: short, so that a storm fits in few messages. The
    message has one silence link for all of them (the group's labels)."""
    state = "RESOLVED" if alert.resolved else "FIRING"
    keys = [f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in _QUIET_LABELS]
    line = f"[{state}] {alert.severity}: {alert.title}"
    if keys:
        line += f" ({', '.join(keys[:_KEY_LABELS])})"
    # As strftime("%Y-%m-%d %H:%M") would write it, at a third of the cost.
    line += f" since {alert.starts_at.isoformat(' ', 'minutes')[:16]} UTC"
    shown = [link.url for link in alert.links if link.title != "Silence"]
    if shown:
        line += " " + " ".join(shown)
    return line


def group_message(
    group: AlertGroup,
    alerts: tuple[Alert, ...],
    truncated: int = 0,
    lines: list[str] | None = None,
) -> Alert:
    """The summary alert one channel receives for ``alerts`` of ``group``.

    :param lines: each alert's line, when the caller has them already.
    """
    firing = sum(1 for a in alerts if not a.resolved)
    resolved = len(alerts) - firing
    name = (group.common_labels or {}).get("alertname") or alerts[0].title
    grouped = ", ".join(f"{k}={v}" for k, v in sorted(group.group_labels.items()))
    title = f"{name}: {firing} firing, {resolved} resolved"
    if grouped:
        title += f" ({grouped})"
    lines = [_line(a) for a in alerts] if lines is None else list(lines)
    if truncated:
        lines.append(f"and {truncated} more not sent by Alertmanager")
    key = "\x1f".join(
        [group.group_key, *sorted(f"{a.fingerprint}:{a.status.value}" for a in alerts)]
    )
    links: tuple[Link, ...] = ()
    if group.external_url:
        matchers = group.group_labels or group.common_labels or {}
        links = (
            Link(group.external_url, "Alertmanager"),
            Link(silence_url(group.external_url, matchers), "Silence"),
        )
    fields: dict[str, Any] = {
        "title": title,
        "body": "\n".join(lines),
        "severity": min((a.severity for a in alerts), key=SEVERITIES.index),
        "labels": dict(group.common_labels or {}),
        "annotations": dict(group.common_annotations or {}),
        "status": Status.FIRING if firing else Status.RESOLVED,
        "fingerprint": "am-" + hashlib.sha256(key.encode()).hexdigest()[:24],
        "starts_at": min(a.starts_at for a in alerts),
        "ends_at": None,
        "links": links,
        "source": alerts[0].source,
    }
    # Made of checked alerts and links; only the group's own maps and title are text no
    # alert has vouched for yet.
    labels, annotations = fields["labels"], fields["annotations"]
    try:
        "\x00".join(
            [title, *labels, *labels.values(), *annotations, *annotations.values()]
        ).encode()
    except (TypeError, UnicodeEncodeError):
        return Alert(**fields)
    return Alert.from_checked(**fields)


def split(lines: list[str], budget: int | None) -> list[range]:
    """Runs of ``lines`` (as index ranges) whose bytes stay within ``budget`` (a run holds
    at least one line, however long)."""
    if budget is None:
        return [range(len(lines))]
    runs: list[range] = []
    start, used = 0, 0
    for index, line in enumerate(lines):
        size = len(line.encode()) + 1
        if index > start and used + size > budget:
            runs.append(range(start, index))
            start, used = index, 0
        used += size
    runs.append(range(start, len(lines)))
    return runs


class Budgets:
    """Per channel, found once: how many bytes of alert lines fit in one provider message
    (by previewing a message on the channel; ``None``: no limit known), and whether its
    messages need their group (:meth:`needs_group`)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._known: dict[str, int | None] = {}
        self._grouped: dict[str, bool] = {}
        # Copying every alert to show routes its receiver costs more than the rest of a
        # request: only done when a route asks for it.
        self.by_receiver = any(RECEIVER_LABEL in r.labels for r in dispatcher.config.routes)

    def __call__(self, channel: str) -> int | None:
        if channel not in self._known:
            self._known[channel] = self._measure(channel)
        return self._known[channel]

    def needs_group(self, channel: str) -> bool:
        """Whether ``channel`` renders a message with its group: it (or a route to it) has
        a template, or it mentions people named in alerts' labels. Storing the group
        costs a request about a quarter more: other channels are not given it."""
        if channel not in self._grouped:
            config = self.dispatcher.config
            spec = config.channels[channel]
            self._grouped[channel] = bool(spec.template or spec.mention_labels) or any(
                r.template is not None for r in config.routes if channel in r.channels
            )
        return self._grouped[channel]

    def _measure(self, channel: str) -> int | None:
        live = self.dispatcher.channels[channel]
        if live.kind.preview is None:
            return None
        try:
            parts = self.dispatcher.preview(channel, Alert(title="x", fingerprint="budget"))
        except Exception:  # a kind that cannot preview a bare alert: no known limit
            return None
        limit = parts[0].limit if parts else None
        if limit is None:
            return None
        return max(int((limit - parts[0].size) * _FILL), 256)


def messages(
    group: AlertGroup, alerts: tuple[Alert, ...], budget: int | None
) -> list[tuple[Alert, AlertGroup]]:
    """The messages one channel receives for ``alerts`` of ``group``: each a summary
    alert and the group of the alerts it lists, cut at alert boundaries to fit ``budget``
    bytes of alert lines; the sender's count of alerts it left out goes with the last."""
    lines = [_line(a) for a in alerts]  # once: measured for the cuts, then listed
    runs = split(lines, budget)
    out = []
    for index, run in enumerate(runs):
        truncated = group.truncated_alerts if index == len(runs) - 1 else 0
        told = AlertGroup(
            alerts[run.start : run.stop],
            receiver=group.receiver,
            group_labels=group.group_labels,
            common_labels=group.common_labels,
            common_annotations=group.common_annotations,
            external_url=group.external_url,
            group_key=group.group_key,
            truncated_alerts=truncated,
        )
        message = group_message(group, told.alerts, truncated, lines[run.start : run.stop])
        out.append((message, told))
    return out
