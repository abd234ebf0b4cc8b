"""Value objects that cross the plugin boundary: alerts, deliveries, receipts, groups.

All are frozen attrs classes. Change one with :func:`attrs.evolve`; build one from
untrusted data with its ``from_dict`` constructor, which validates and raises
:class:`~notifier.errors.NotifierError` subclasses with clear messages.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import attrs

from notifier.errors import InvalidAlert

SEVERITIES = ("critical", "error", "warning", "info")


class Status(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Outcome(enum.StrEnum):
    """What happened to one delivery (one alert on one channel)."""

    DELIVERED = "delivered"
    FAILED = "failed"  # permanently: dead letter
    QUEUED = "queued"  # not delivered yet; the outbox will try again
    DEDUPLICATED = "deduplicated"  # the same alert was delivered within the dedup window


def _text(value: Any, what: str) -> str:
    """``value`` if it is text every channel can encode, else a clear error."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate (from a JSON "\\ud800" escape) encodes nowhere: reject it here
        # rather than fail on every channel later.
        raise ValueError(
            f"{what} holds a lone surrogate (U+{ord(value[exc.start]):04X}), which is not text"
        ) from None
    return value


def _is_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _text(value, attribute.name)


def _is_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _text(value, "a link's url")
    try:
        urlsplit(value)
    except ValueError:
        # Rendering splits every link (its host names an untitled one): refuse it here
        # rather than fail on every channel later.
        raise ValueError(f"a link's url is not a URL: {_name(value)}") from None


def _name(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:39] + "…"


def _str_map(what: str) -> Callable[[Mapping[str, Any] | None], dict[str, str]]:
    def convert(value: Mapping[str, Any] | None) -> dict[str, str]:
        if value is None:
            return {}
        if type(value) is dict:
            # Text to text, the usual case, checked in one pass: a key or value that is
            # not text, or holds a lone surrogate, fails the join or the encode, and the
            # loop below names it.
            try:
                "\x00".join([*value, *value.values()]).encode("utf-8")
            except (TypeError, UnicodeEncodeError):
                pass
            else:
                return dict(value)
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} must be a table of text, got {type(value).__name__}")
        result = {}
        for key, item in value.items():
            # Numbers are written as text; anything nested has no single text form.
            for part in (key, item):
                if not isinstance(part, str | int | float):
                    raise TypeError(
                        f"{what} must map text to text, got {type(part).__name__} "
                        f"at {_name(key) if part is item else 'a key'}"
                    )
            result[_text(str(key), f"a key of {what}")] = _text(str(item), f"{what}[{_name(key)}]")
        return result

    return convert


_label_map = _str_map("labels")
_annotation_map = _str_map("annotations")


def _labels(value: Mapping[str, Any] | None) -> dict[str, str]:
    return _label_map(value)


def _annotations(value: Mapping[str, Any] | None) -> dict[str, str]:
    return _annotation_map(value)


def _time(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"{what} must be ISO 8601 text or Unix seconds, got {type(value).__name__}")
    elif isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{what}: timestamp {value!r} is out of range") from exc
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} must be an ISO 8601 time, got {_name(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:  # an offset that moves the time past year 1 or 9999 cannot be compared or stored
        parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{what}: {parsed.isoformat()} is out of range") from None
    return parsed


def _starts_at(value: datetime | str | float) -> datetime:
    if value is None:
        raise TypeError("starts_at must be a time; leave it out to mean now")
    return _time(value, "starts_at")


def _ends_at(value: datetime | str | float | None) -> datetime | None:
    return None if value is None else _time(value, "ends_at")


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class Link:
    """A link shown with an alert (dashboard, runbook, silence)."""

    url: str = attrs.field(validator=_is_url)
    title: str = attrs.field(default="", validator=_is_text)

    @classmethod
    def coerce(cls, value: Link | str | Mapping[str, Any]) -> Link:
        if isinstance(value, Link):
            return value
        if isinstance(value, str):
            return cls(url=value)
        if isinstance(value, Mapping) and "url" in value:
            title = value.get("title")
            return cls(url=_text(value["url"], "a link's url"), title=title or "")
        raise TypeError(f"a link is a URL string or a table with 'url', got {type(value).__name__}")


def _links(values: Any) -> tuple[Link, ...]:
    if values is None:
        return ()
    if isinstance(values, str | Mapping | Link):
        values = [values]
    if not isinstance(values, list | tuple):
        raise TypeError(f"links must be a list of links, got {type(values).__name__}")
    return tuple(Link.coerce(v) for v in values)


def _severity(value: str) -> str:
    if isinstance(value, str) and value.lower() in SEVERITIES:
        return value.lower()
    got = _name(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {got}")


def _status(value: Status | str) -> Status:
    if isinstance(value, str) and value in Status._value2member_map_:
        return Status(value)
    got = _name(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"status must be firing or resolved, got {got}")


@attrs.frozen
class Alert:
    """One alert, firing or resolved.

    ``fingerprint`` identifies the alert across its life (firing, re-firing, resolved): it
    defaults to a hash of the title and labels, so the same problem gets the same
    fingerprint from every sender. Pass one explicitly when the source system has its own.
    """

    title: str = attrs.field(validator=_is_text)
    body: str = attrs.field(default="", validator=_is_text)
    severity: str = attrs.field(default="warning", converter=_severity)
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    annotations: dict[str, str] = attrs.field(factory=dict, converter=_annotations)
    status: Status = attrs.field(default=Status.FIRING, converter=_status)
    fingerprint: str = attrs.field(default="", validator=_is_text)
    starts_at: datetime = attrs.field(factory=_now, converter=_starts_at)
    ends_at: datetime | None = attrs.field(default=None, converter=_ends_at)
    links: tuple[Link, ...] = attrs.field(default=(), converter=_links)
    source: str = attrs.field(default="", validator=_is_text)

    def __attrs_post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("an alert needs a non-empty title")
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", self.compute_fingerprint())

    def compute_fingerprint(self) -> str:
        canonical = json.dumps(
            {"title": self.title, "labels": dict(sorted(self.labels.items()))},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def resolved(self) -> bool:
        return self.status is Status.RESOLVED

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Build an alert from JSON-like data; unknown keys are an error.

        :raises InvalidAlert: naming the first field that is wrong and why.
        """
        if not isinstance(data, Mapping):
            raise InvalidAlert(f"an alert is a JSON object, got {type(data).__name__}")
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(_name(k) for k in data if k not in known)
        if unknown:
            raise InvalidAlert(f"unknown alert field(s): {', '.join(unknown)}")
        if "title" not in data:
            raise InvalidAlert("an alert needs a 'title'")
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as exc:
            raise InvalidAlert(f"invalid alert: {exc}") from exc

    @classmethod
    def from_checked(
        cls,
        *,
        title: str,
        body: str,
        severity: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        status: Status,
        fingerprint: str,
        starts_at: datetime,
        ends_at: datetime | None,
        links: tuple[Link, ...],
        source: str,
    ) -> Alert:
        """The alert ``Alert(...)`` would build from values already in the form its
        checks and conversions give, without running them again: for a parser that
        checks as it reads (a storm of Alertmanager notifications builds tens of
        thousands of alerts a second, and checking each twice was a third of the cost).

        The caller vouches for what ``__init__`` would check: every text encodes as
        UTF-8, ``title`` is not blank, ``fingerprint`` is not empty, ``severity`` is one of
        :data:`SEVERITIES`, the maps are fresh ``dict`` of text the alert may own, and
        the times are aware. Anything else goes through ``Alert(...)``.
        """
        alert = object.__new__(cls)
        put = object.__setattr__
        put(alert, "title", title)
        put(alert, "body", body)
        put(alert, "severity", severity)
        put(alert, "labels", labels)
        put(alert, "annotations", annotations)
        put(alert, "status", status)
        put(alert, "fingerprint", fingerprint)
        put(alert, "starts_at", starts_at)
        put(alert, "ends_at", ends_at)
        put(alert, "links", links)
        put(alert, "source", source)
        return alert

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "body": self.body,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "status": self.status.value,
            "fingerprint": self.fingerprint,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "links": [{"url": link.url, "title": link.title} for link in self.links],
            "source": self.source,
        }


def delivery_key(alert: Alert, channel: str) -> str:
    """A stable idempotency key for one alert on one channel.

    The same firing (fingerprint and start time) or resolution gets the same key however
    often it is sent, so retries and re-sends after a crash can be recognised.
    """
    return key_of(alert.fingerprint, alert.status.value, alert.starts_at.isoformat(), channel)


def key_of(fingerprint: str, status: str, starts_at: str, channel: str) -> str:
    """:func:`delivery_key` from the alert's parts, for callers that have them as text."""
    raw = "\x1f".join((fingerprint, status, starts_at, channel))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@attrs.frozen
class DeliveryContext:
    """What a channel needs to know about one delivery besides the alert.

    :param idempotency_key: stable across retries of this delivery; pass it to providers
        that deduplicate.
    :param attempt: 1 for the first try, counting retries over time from the outbox.
    :param mentions: extra people to notify, from the matching route (``"@all"`` for
        everyone).
    :param timeout: seconds the dispatcher allows this delivery.
    :param pace: call before each provider request after the first (a message split into
        parts): it waits for, and takes, one more slot of the channel's rate limit and
        returns the seconds waited. ``None`` when the channel has no rate limit.
    :param template: the channel's or route's template bound to this delivery
        (:class:`notifier.templates.Rendering`); kinds render it with
        :func:`notifier.templates.message`. ``None``: the kind's own layout.
    """

    idempotency_key: str = ""
    attempt: int = 1
    mentions: tuple[str, ...] = ()
    timeout: float = 30.0
    pace: Callable[[], float] | None = attrs.field(default=None, eq=False, repr=False)
    template: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class SendResult:
    """What a channel's send hook returns on success.

    :param attempts: HTTP requests made, retries included.
    :param details: provider facts worth keeping (partial failures, request ids).
    """

    message_id: str | None = None
    attempts: int = 1
    parts: int = 1
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Receipt:
    """The result of one delivery: one alert on one channel. Never holds a secret."""

    channel: str
    outcome: Outcome = attrs.field(converter=Outcome)
    attempts: int = 0
    latency_ms: float = 0.0
    message_id: str | None = None
    error: str | None = None
    fingerprint: str = ""
    kind: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)
    next_attempt_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.DELIVERED, Outcome.DEDUPLICATED)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channel": self.channel,
            "outcome": self.outcome.value,
            "attempts": self.attempts,
            "latency_ms": round(self.latency_ms, 3),
            "message_id": self.message_id,
            "error": self.error,
            "fingerprint": self.fingerprint,
            "kind": self.kind,
        }
        if self.details:
            data["details"] = self.details
        if self.next_attempt_at is not None:
            data["next_attempt_at"] = self.next_attempt_at
        return data


def _members(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class GroupSpec:
    """A group chat to create."""

    name: str
    owner: str | None = None
    members: tuple[str, ...] = attrs.field(default=(), converter=_members)
    chat_id: str | None = None


@attrs.frozen
class GroupInfo:
    """A group chat as the provider knows it."""

    chat_id: str
    name: str = ""
    owner: str | None = None
    members: tuple[str, ...] = attrs.field(default=(), converter=_members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "name": self.name,
            "owner": self.owner,
            "members": list(self.members),
        }


@attrs.frozen
class GroupUpdate:
    """Changes to a group chat; ``None`` fields stay as they are."""

    name: str | None = None
    owner: str | None = None
    add_members: tuple[str, ...] = attrs.field(default=(), converter=_members)
    remove_members: tuple[str, ...] = attrs.field(default=(), converter=_members)
