"""The ``webhook`` channel: POST the alert as JSON to any URL.

The body is the alert as JSON (plus a rendered ``text``), or the channel's (or route's)
``template``: a Jinja2 template whose output is the JSON body (``{{ alert.title | tojson
}}``), so a template can target a chat tool or an incident system without a plugin. Every delivery
carries an ``Idempotency-Key`` header, stable across retries, for receivers that
deduplicate.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import attrs

from notifier import hookimpl
from notifier.channelhooks import ChannelHooks
from notifier.errors import ConfigError, ConfigIssue
from notifier.http import (
    HTTP_OPTIONS,
    Endpoint,
    HeaderAuth,
    HttpClient,
    client_from_options,
    is_http_url,
)
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, Part
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.redact import Secret, register
from notifier.render import render_text
from notifier.templates import message


@attrs.define
class WebhookChannel:
    name: str
    client: HttpClient
    # The endpoint's path is the secret URL's path and query: kept out of the repr.
    endpoint: Endpoint = attrs.field(repr=False)

    @property
    def kind(self) -> str:
        return "webhook"

    def body(self, alert: Alert, delivery: DeliveryContext) -> Any:
        """The JSON body a send posts (``notifier render`` shows it)."""
        rendered = message(alert, delivery)
        if rendered is None:
            return {**alert.to_dict(), "text": render_text(alert), "channel": self.name}
        return json.loads(rendered)  # the template checked that it is JSON

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        key = delivery.idempotency_key
        result = self.client.call(
            self.endpoint,
            json=self.body(alert, delivery),
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


def build(spec: ChannelSpec, context: BuildContext) -> WebhookChannel:
    url = spec.options["url"]
    if not is_http_url(url.reveal()):
        raise ConfigError(
            [ConfigIssue(spec.source, f"channels.{spec.name}.url", "an http:// or https:// URL")]
        )
    parts = urlsplit(url.reveal())
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
    return WebhookChannel(spec.name, client, endpoint)


def preview(channel: WebhookChannel, alert: Alert, delivery: DeliveryContext) -> list[Part]:
    body = channel.body(alert, delivery)
    content = json.dumps(body, ensure_ascii=False)
    return [Part(body, content, len(content.encode("utf-8")))]


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="webhook",
            build=build,
            description="POST each alert as JSON to a URL.",
            bounded=True,
            template_format="json",
            preview=preview,
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
                *HTTP_OPTIONS,
            ),
        )
    ]


hooks = ChannelHooks(sends=(WebhookChannel,))
notifier_send = hooks.notifier_send
