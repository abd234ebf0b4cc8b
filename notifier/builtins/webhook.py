"""The ``webhook`` channel: POST the alert as JSON to any URL.

The body is the alert as JSON (plus a rendered ``text``), or a ``template``: a JSON
document whose ``${name}`` placeholders are filled with JSON-escaped alert fields, so a
template can target a chat tool or an incident system without a plugin. Every delivery
carries an ``Idempotency-Key`` header, stable across retries, for receivers that
deduplicate.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import urlsplit

import attrs

from notifier import hookimpl
from notifier.channelhooks import ChannelHooks
from notifier.errors import ConfigError, ConfigIssue
from notifier.http import HTTP_OPTIONS, Endpoint, HeaderAuth, HttpClient, client_from_options
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.redact import Secret, register
from notifier.render import render_markdown, render_text

PLACEHOLDERS = (
    "title", "body", "severity", "status", "fingerprint", "text", "markdown",
    "starts_at", "ends_at", "source", "labels", "annotations", "links", "channel",
    "idempotency_key",
)  # fmt: skip


def _fields(alert: Alert, channel: str, key: str) -> dict[str, Any]:
    return {
        **alert.to_dict(),
        "text": render_text(alert),
        "markdown": render_markdown(alert),
        "channel": channel,
        "idempotency_key": key,
    }


def fill(template: string.Template, alert: Alert, channel: str, key: str) -> Any:
    """The template with every placeholder replaced, parsed as JSON.

    Strings are inserted JSON-escaped without their quotes (write ``"${title}"``); tables
    and lists are inserted as JSON (write ``${labels}`` without quotes).
    """
    values = {}
    for name, value in _fields(alert, channel, key).items():
        encoded = json.dumps(value, ensure_ascii=False)
        values[name] = encoded[1:-1] if isinstance(value, str) else encoded
    return json.loads(template.substitute(values))


@attrs.define
class WebhookChannel:
    name: str
    client: HttpClient
    # The endpoint's path is the secret URL's path and query: kept out of the repr.
    endpoint: Endpoint = attrs.field(repr=False)
    template: string.Template | None

    @property
    def kind(self) -> str:
        return "webhook"

    def body(self, alert: Alert, key: str) -> Any:
        if self.template is None:
            return {**alert.to_dict(), "text": render_text(alert), "channel": self.name}
        return fill(self.template, alert, self.name, key)

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        key = delivery.idempotency_key
        result = self.client.call(
            self.endpoint,
            json=self.body(alert, key),
            # Sent as a header, not as ``idempotency_key=``: a generic receiver may not
            # deduplicate, so a request that may have arrived is not retried blindly.
            headers={"Idempotency-Key": key} if key else None,
        )
        message_id = None
        if isinstance(result.data, dict):
            found = result.data.get("id") or result.data.get("message_id")
            message_id = str(found) if found is not None else None
        return SendResult(message_id=message_id or result.request_id, attempts=result.attempts)

    def close(self) -> None:
        self.client.close()


def _template(spec: ChannelSpec) -> string.Template | None:
    raw = spec.options.get("template")
    if raw is None:
        return None
    template = string.Template(raw)
    problem = ""
    unknown = sorted(
        {m.group("named") or m.group("braced") for m in template.pattern.finditer(raw)}
        - {None, *PLACEHOLDERS}
    )
    if unknown:
        problem = f"unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}"
    else:
        try:
            fill(template, Alert(title="sample", labels={"a": "b"}), spec.name, "k")
        except (ValueError, KeyError) as exc:
            problem = f"a JSON document with ${{placeholders}} ({exc})"
    if problem:
        raise ConfigError([ConfigIssue(spec.source, f"channels.{spec.name}.template", problem)])
    return template


def build(spec: ChannelSpec, context: BuildContext) -> WebhookChannel:
    url = spec.options["url"]
    parts = urlsplit(url.reveal())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            [ConfigIssue(spec.source, f"channels.{spec.name}.url", "an http:// or https:// URL")]
        )
    # The URL may carry a token: it is a Secret, and only its origin becomes the API root.
    path = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    register(path)  # urllib3 logs the request line: path and query without the origin
    headers = {k: Secret(v) for k, v in (spec.options.get("headers") or {}).items()}
    client = client_from_options(
        spec, context, f"{parts.scheme}://{parts.netloc}/", HeaderAuth(headers)
    )
    endpoint = Endpoint(
        "post",
        spec.options["method"],
        path,
        description="deliver one alert",
        idempotent=False,
    )
    return WebhookChannel(spec.name, client, endpoint, _template(spec))


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="webhook",
            build=build,
            description="POST each alert as JSON to a URL.",
            bounded=True,
            options=(
                Option(
                    "url",
                    required=True,
                    secret=True,
                    help="where to send; treated as a secret since URLs often embed tokens",
                ),
                Option("method", choices=("POST", "PUT"), default="POST"),
                Option(
                    "headers",
                    dict,
                    default={},
                    secret=True,
                    help="extra request headers; values are treated as secrets",
                ),
                Option("template", help="a JSON body with ${placeholder}s; default: the alert"),
                *HTTP_OPTIONS,
            ),
        )
    ]


hooks = ChannelHooks(sends=(WebhookChannel,))
notifier_send = hooks.notifier_send
