"""Channel kinds and their option schemas.

A plugin contributes channel kinds through :func:`notifier.hookspecs.notifier_channel_kinds`.
Each :class:`ChannelKind` names itself, declares its options as :class:`Option` records
(the configuration loader validates a channel's table against them and reports every
problem at once) and says how to build a configured channel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from notifier.http.auth import TokenStore

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list of strings",
    dict: "a table of strings",
}


@attrs.frozen
class Option:
    """One option of a channel kind.

    :param type: ``str``, ``int``, ``float``, ``bool``, ``list`` (of strings) or ``dict``
        (string to string).
    :param secret: the value is a credential: it becomes a
        :class:`~notifier.redact.Secret` (for a ``dict``, each of its values does) and
        never appears in output, error messages about a wrong value included.
    :param choices: allowed values, if limited.
    :param minimum: lowest allowed value for numbers.
    :param maximum: highest allowed value for numbers. A number option without one
        still has to be finite (no ``nan`` or ``inf``).
    :param path: the value is a file path; a relative one is resolved against the
        directory of the config file that set it.
    """

    name: str
    type: type = str
    required: bool = False
    default: Any = None
    secret: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    help: str = ""
    path: bool = False
    maximum: float | None = None

    @property
    def expected(self) -> str:
        text = _TYPE_NAMES[self.type]
        if self.choices:
            text += " (one of " + ", ".join(repr(c) for c in self.choices) + ")"
        if self.minimum is not None:
            text += f" >= {_number(self.minimum)}"
        if self.maximum is not None:
            text += (" and" if self.minimum is not None else "") + f" <= {_number(self.maximum)}"
        return text

    def check(self, value: Any) -> str | None:
        """``None`` when ``value`` fits this option, else what was expected instead."""
        ok: bool
        if self.type is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is list:
            ok = isinstance(value, list) and all(isinstance(v, str | int) for v in value)
        elif self.type is dict:
            ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        else:
            ok = isinstance(value, self.type)
        if ok and self.choices and value not in self.choices:
            ok = False
        if ok and self.type is float and not math.isfinite(value):
            ok = False
        if ok and self.minimum is not None and value < self.minimum:
            ok = False
        if ok and self.maximum is not None and value > self.maximum:
            ok = False
        if ok:
            return None
        return f"expected {self.expected}, got {_describe(value, shown=not self.secret)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _describe(value: Any, *, shown: bool = True) -> str:
    """What ``value`` is, for an error message; ``shown=False`` (a secret) names only its
    type, since a wrongly typed credential is still a credential."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}" if shown else "a boolean"
    if isinstance(value, str):
        return f"string {value!r}" if shown and len(value) < 40 else "a string"
    if isinstance(value, int | float):
        return f"number {value!r}" if shown else "a number"
    if isinstance(value, list):
        return "a list" + ("" if all(isinstance(v, str) for v in value) else " of non-strings")
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


@attrs.frozen
class Part:
    """One message a send would deliver, as ``notifier render`` shows it.

    :param payload: what goes to the provider (a JSON body, or the text itself).
    :param content: the part of it that is limited and shown to people.
    :param size: the limited size, in ``unit`` (``"bytes"`` or ``"characters"``).
    :param limit: the provider's limit for ``size``; ``None`` when it has none.
    """

    payload: Any
    content: str
    size: int
    limit: int | None = None
    unit: str = "bytes"

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": self.payload,
            "content": self.content,
            "size": self.size,
            "limit": self.limit,
            "unit": self.unit,
        }


@attrs.frozen
class RateLimit:
    """At most ``count`` deliveries in any window of ``per`` seconds."""

    count: int = attrs.field(validator=attrs.validators.gt(0))
    per: float = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen
class ChannelSpec:
    """A configured channel: its name, kind and validated options (secrets wrapped)."""

    name: str
    kind: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    rate_limit: RateLimit | None = None
    timeout: float = 30.0
    source: str = ""  # the config file it came from, for messages
    template: Any = None  # a notifier.templates.MessageTemplate from ``template = {...}``
    mention_labels: tuple[str, ...] = ()
    # Waiting outbox deliveries past which one digest tells them; None: the kind's
    # default (see notifier.outbox.policy), 0: never.
    digest_threshold: int | None = None


@attrs.frozen
class BuildContext:
    """What the host gives a kind's ``build`` besides the channel's own options.

    :param pool_size: how many deliveries may run at once; size connection pools to it.
    :param observe: call with each :class:`~notifier.http.events.RequestEvent`; forwards to
        the ``notifier_http_request`` hook.
    :param tokens: a :class:`~notifier.http.auth.TokenStore` shared by every process that
        delivers (``[celery]``), for kinds that fetch access tokens to give their
        :class:`~notifier.http.auth.TokenCache`; ``None``: each process fetches its own.
    """

    clock: Clock = SYSTEM_CLOCK
    pool_size: int = 8
    observe: Callable[[Any], None] | None = None
    tokens: TokenStore | None = None


@attrs.frozen
class ChannelKind:
    """A kind of channel a plugin provides.

    :param name: what ``kind = "..."`` in a config file says; unique across plugins.
    :param build: ``build(spec, context) -> channel``; the channel object is the plugin's
        own and is handed back to the plugin's operation hooks.
    :param rate_limit: the provider's limit, applied unless the config sets another.
    :param deduplicates: the provider drops repeats of one idempotency key, so a send may
        be retried even after the request reached it.
    :param bounded: every send ends by the delivery's deadline on its own (its blocking
        calls go through :class:`~notifier.http.HttpClient`, or read
        :func:`notifier.deadline.remaining`), so the dispatcher may run a lone delivery
        on the calling thread instead of handing it to the channel's lane and back.
    :param validate: ``validate(spec) -> [ConfigIssue, ...]`` for rules that span several
        options (one of two options required, ...); run by the config loader, so
        ``notifier check`` reports them together with the options' own errors. When some
        options failed their own check, it sees each of those at its default; its issues
        at keys already reported are dropped, and if it raises on such a table its rules
        wait until the options are fixed.
    :param template_format: what a ``template`` renders for this kind: ``"text"`` (text or
        markdown), ``"html"`` (autoescaped) or ``"json"`` (the output must be a JSON
        document).
    :param template_escape: ``template_escape(spec) -> escape or None``: the function
        applied to every ``{{ value }}`` a template inserts on that channel, for markup
        where alert text could otherwise forge a mention or a link (Slack mrkdwn, Feishu
        ``lark_md``); ``| safe`` opts a value out.
    :param preview: ``preview(channel, alert, delivery) -> [Part, ...]``: exactly what a
        send would deliver, built by the same code, sending nothing (``notifier render``).
    """

    name: str
    build: Callable[[ChannelSpec, BuildContext], Any]
    options: tuple[Option, ...] = ()
    description: str = ""
    rate_limit: RateLimit | None = None
    can_create_group: bool = False
    deduplicates: bool = False
    bounded: bool = False
    validate: Callable[[ChannelSpec], Iterable[Any]] | None = None
    template_format: str = "text"
    template_escape: Callable[[ChannelSpec], Callable[[str], str] | None] | None = None
    preview: Callable[[Any, Any, Any], list[Part]] | None = None
    plugin: str = ""  # the distribution that provides it, filled in by the manager

    def option(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None
