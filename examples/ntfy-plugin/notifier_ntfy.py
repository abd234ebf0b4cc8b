"""A notifier channel kind, ``ntfy``: publish each alert to a topic on an ntfy server.

ntfy (https://ntfy.sh, or a self-hosted server) pushes messages to every phone and
desktop subscribed to a topic. Each alert becomes one JSON message posted to the
server's root URL, with the alert's severity as the message priority.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs
from notifier import hookimpl
from notifier.channelhooks import ChannelHooks
from notifier.errors import ConfigIssue
from notifier.http import HTTP_OPTIONS, BearerAuth, Endpoint, HttpClient, client_from_options
from notifier.kinds import BuildContext, ChannelKind, ChannelSpec, Option, RateLimit
from notifier.models import Alert, DeliveryContext, SendResult
from notifier.redact import Secret
from notifier.render import fit, headline, render_text

# ntfy turns a message longer than this into an attachment; we truncate instead.
MAX_BYTES = 4096
PRIORITY = {"critical": 5, "error": 4, "warning": 3, "info": 2}
TAGS = {"critical": "rotating_light", "error": "x", "warning": "warning", "info": "bell"}


OPTIONS = (
    Option("server", default="https://ntfy.sh/", help="the ntfy server's root URL"),
    Option(
        "topic",
        required=True,
        secret=True,  # on a public server, whoever knows the topic can read it
        help="the topic to publish to",
    ),
    Option("token", secret=True, help="an access token, for protected topics"),
    *HTTP_OPTIONS,  # connect_timeout, read_timeout, verify_tls, max_attempts
)


def validate(spec: ChannelSpec) -> list[ConfigIssue]:
    """What the option types cannot say, checked when the configuration is read."""
    if urlsplit(spec.options["server"]).scheme in ("http", "https"):
        return []
    where = f"channels.{spec.name}.server"
    return [ConfigIssue(spec.source, where, "an http:// or https:// URL")]


# JSON publishing goes to the server's root. A POST is not idempotent and ntfy does not
# deduplicate, so the HTTP layer retries it only when it provably never arrived.
PUBLISH = Endpoint("publish", "POST", "", description="publish one message")


@attrs.frozen
class NtfyChannel:
    """One configured ntfy channel: what ``build`` returns and the hooks hand back."""

    name: str
    topic: Secret = attrs.field(repr=False)
    client: HttpClient = attrs.field(repr=False)

    def payload(self, alert: Alert) -> dict[str, object]:
        tag = "white_check_mark" if alert.resolved else TAGS[alert.severity]
        payload: dict[str, object] = {
            "topic": self.topic,  # the HTTP layer reveals a Secret only on the wire
            "title": headline(alert),
            "message": fit(render_text(alert), MAX_BYTES)[0],
            "priority": 2 if alert.resolved else PRIORITY[alert.severity],
            "tags": [tag],
        }
        if alert.links:
            payload["click"] = alert.links[0].url
        return payload

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        result = self.client.call(PUBLISH, json=self.payload(alert))
        message_id = result.data.get("id") if isinstance(result.data, dict) else None
        return SendResult(message_id=message_id, attempts=result.attempts)

    def close(self) -> None:
        self.client.close()


def build(spec: ChannelSpec, context: BuildContext) -> NtfyChannel:
    server = spec.options["server"].rstrip("/") + "/"
    token = spec.options["token"]
    auth = BearerAuth(token) if token else None
    client = client_from_options(spec, context, server, auth)
    return NtfyChannel(spec.name, spec.options["topic"], client)


@hookimpl
def notifier_channel_kinds() -> list[ChannelKind]:
    return [
        ChannelKind(
            name="ntfy",
            build=build,
            options=OPTIONS,
            validate=validate,
            description="Publish each alert to an ntfy topic (phone and desktop push).",
            # Every send goes through HttpClient, which keeps to the delivery's deadline.
            bounded=True,
            # ntfy.sh allows a burst of 60 messages, then about one every 5 seconds.
            rate_limit=RateLimit(count=60, per=300.0),
        )
    ]


# notifier_send, answering for NtfyChannel objects only: it returns None for any other
# channel, so the plugin that built that one answers.
hooks = ChannelHooks(sends=(NtfyChannel,))
notifier_send = hooks.notifier_send
