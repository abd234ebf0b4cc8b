"""A fake Slack for tests: incoming webhooks on a real HTTP server on 127.0.0.1.

:class:`FakeSlack` is a :class:`notifier.testing.LocalServer` that answers like Slack's
incoming webhooks: ``200 ok`` in plain text, plain-text error names with Slack's statuses
(``400 invalid_payload``, ``400 no_text``, ``404 no_service``, ``403 invalid_token``,
``404 channel_not_found``, ``410 channel_is_archived``, ``403 action_prohibited``), and
``429`` with ``Retry-After`` when asked to or when a webhook is posted to faster than its
optional per-second allowance. It validates the Block Kit limits a channel must respect
(50 blocks, 150-character headers, 3,000-character sections, 10 fields of 2,000) and, like
Slack, truncates ``text`` past 40,000 characters, marking the message ``truncated``::

    from notifier_slack.testing import FakeSlack

    with FakeSlack() as slack:
        url = slack.webhook("#alerts")           # configure the channel with this URL
        ...                                      # send through the channel
        assert slack.messages("#alerts")[0].text.startswith("[FIRING]")
        slack.archive("#alerts")                 # later posts answer 410 channel_is_archived
        slack.rate_limit_next(retry_after=3)     # the next post answers 429, Retry-After: 3
        slack.reject_next("invalid_payload")     # the next post answers 400 invalid_payload
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import attrs

from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.testing.server import LocalServer, Request, Response
from notifier.testing.serving import Served, serve_from_shell
from notifier.testing.windows import RateWindows

__all__ = ["STATUS", "FakeSlack", "SlackMessage", "validate_blocks"]

#: The HTTP status Slack answers with each error name.
STATUS: dict[str, int] = {
    "invalid_payload": 400,
    "invalid_blocks": 400,
    "invalid_blocks_format": 400,
    "no_text": 400,
    "too_many_attachments": 400,
    "user_not_found": 400,
    "no_service_id": 400,
    "channel_not_found": 404,
    "no_service": 404,
    "no_team": 404,
    "channel_is_archived": 410,
    "team_disabled": 410,
    "action_prohibited": 403,
    "posting_to_general_channel_denied": 403,
    "invalid_token": 403,
    "rate_limited": 429,
}
TEXT_CHARS = 40_000
LIMITS = {"blocks": 50, "header": 150, "section": 3000, "fields": 10, "field": 2000}
_BLOCK_TYPES = frozenset({"header", "section", "context", "divider", "actions", "image"})


@attrs.frozen
class SlackMessage:
    """One message a webhook accepted."""

    channel: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    payload: dict[str, Any]
    truncated: bool = False


@attrs.frozen
class _Hook:
    channel: str
    team: str
    service: str
    token: str


def _text_of(obj: Any) -> str | None:
    if not isinstance(obj, dict) or obj.get("type") not in ("mrkdwn", "plain_text"):
        return None
    text = obj.get("text")
    return text if isinstance(text, str) and text.strip() else None


def _check_block(block: Any) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        return f"unknown block type {block.get('type') if isinstance(block, dict) else block!r}"
    kind = block["type"]
    if kind == "header":
        text = _text_of(block.get("text"))
        if text is None or block["text"]["type"] != "plain_text":
            return "a header needs non-empty plain_text"
        return "header over 150 characters" if len(text) > LIMITS["header"] else None
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            return "a section needs text or fields"
        if text is not None and (_text_of(text) is None or len(text["text"]) > LIMITS["section"]):
            return "section text empty or over 3000 characters"
        if fields is not None:
            if not isinstance(fields, list) or not 0 < len(fields) <= LIMITS["fields"]:
                return "a section has 1 to 10 fields"
            for field in fields:
                if _text_of(field) is None or len(field["text"]) > LIMITS["field"]:
                    return "field text empty or over 2000 characters"
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= 10:
            return "a context has 1 to 10 elements"
        if any(_text_of(e) is None or len(e["text"]) > LIMITS["section"] for e in elements):
            return "context text empty or over 3000 characters"
    return None


def validate_blocks(blocks: Any) -> str | None:
    """Why Slack would refuse ``blocks`` (``None`` when it would accept them)."""
    if not isinstance(blocks, list):
        return "blocks is not a list"
    if len(blocks) > LIMITS["blocks"]:
        return f"{len(blocks)} blocks, more than 50"
    for index, block in enumerate(blocks):
        problem = _check_block(block)
        if problem:
            return f"block {index}: {problem}"
    return None


class FakeSlack(LocalServer):
    """Incoming webhooks that answer like Slack's; safe to use from many threads.

    :param clock: times the per-second allowance.
    :param per_second: posts one webhook accepts in any second before answering 429
        (``None``: no limit unless :meth:`rate_limit_next` is called).
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, per_second: int | None = None) -> None:
        self.clock = clock
        self.per_second = per_second
        super().__init__()

    def setup(self) -> None:
        self._state = threading.Lock()
        self._hooks: dict[str, _Hook] = {}
        self._channel_errors: dict[str, str] = {}
        self._rejections: list[str] = []
        self._messages: list[SlackMessage] = []
        self._windows = RateWindows()
        self.problems: list[str] = []  # why payloads were refused, for test messages

    # -- configuration ------------------------------------------------------------------

    def webhook(self, channel: str = "#alerts") -> str:
        """Create a webhook posting to ``channel`` and return its URL."""
        hook = _Hook(
            channel,
            "T" + secrets.token_hex(4).upper(),
            "B" + secrets.token_hex(4).upper(),
            secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"),
        )
        with self._state:
            self._hooks[hook.token] = hook
        return f"{self.url}/services/{hook.team}/{hook.service}/{hook.token}"

    def archive(self, channel: str) -> None:
        """Posts to ``channel`` answer ``410 channel_is_archived`` from now on."""
        self._set_channel_error(channel, "channel_is_archived")

    def delete(self, channel: str) -> None:
        """Posts to ``channel`` answer ``404 channel_not_found`` from now on."""
        self._set_channel_error(channel, "channel_not_found")

    def restrict(self, channel: str) -> None:
        """Posts to ``channel`` answer ``403 action_prohibited`` from now on."""
        self._set_channel_error(channel, "action_prohibited")

    def revoke(self, url: str) -> None:
        """The webhook at ``url`` is removed: posts answer ``404 no_service``."""
        with self._state:
            self._hooks.pop(url.rstrip("/").rsplit("/", 1)[-1], None)

    def _set_channel_error(self, channel: str, error: str) -> None:
        with self._state:
            self._channel_errors[channel] = error

    def reject_next(self, error: str = "invalid_payload", count: int = 1) -> None:
        """Answer the next ``count`` posts with ``error`` and Slack's status for it."""
        if error not in STATUS:
            raise ValueError(f"unknown Slack error {error!r}; known: {', '.join(STATUS)}")
        with self._state:
            self._rejections.extend([error] * count)

    def rate_limit_next(self, count: int = 1, *, retry_after: float | str = 1) -> None:
        """Answer the next ``count`` posts ``429 rate_limited`` with ``Retry-After``."""
        self.fail_next(count, status=429, retry_after=retry_after, body=b"rate_limited")

    # -- observations -------------------------------------------------------------------

    def messages(self, channel: str | None = None) -> list[SlackMessage]:
        """Accepted messages in arrival order, all or those posted to ``channel``."""
        with self._state:
            return [m for m in self._messages if channel is None or m.channel == channel]

    # -- answering ----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[0] != "services":
            return _error("no_service")
        with self._state:
            hook = self._hooks.get(parts[3])
            if hook is None:
                ids = {(h.team, h.service) for h in self._hooks.values()}
                known = (parts[1], parts[2]) in ids
                return _error("invalid_token" if known else "no_service")
            if (hook.team, hook.service) != (parts[1], parts[2]):
                return _error("invalid_token")
            if self._rejections:
                return _error(self._rejections.pop(0))
            if hook.channel in self._channel_errors:
                return _error(self._channel_errors[hook.channel])
        payload, problem = self._payload(request)
        if problem is not None:
            with self._state:
                self.problems.append(problem)
            return _error("no_text" if problem == "no_text" else "invalid_payload")
        return self._accept(hook, payload)

    def _payload(self, request: Request) -> tuple[dict[str, Any], str | None]:
        try:
            if request.header("content-type", "").startswith("application/x-www-form-urlencoded"):
                form = parse_qs(request.body.decode("utf-8"))
                payload = json.loads(form["payload"][0])
            else:
                payload = json.loads(request.body.decode("utf-8"))
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            return {}, f"not JSON: {exc}"
        if not isinstance(payload, dict):
            return {}, "the payload is not a JSON object"
        text, blocks = payload.get("text"), payload.get("blocks")
        if not (isinstance(text, str) and text.strip()) and not blocks:
            return payload, "no_text"
        if blocks is not None:
            problem = validate_blocks(blocks)
            if problem:
                return payload, problem
        return payload, None

    def _accept(self, hook: _Hook, payload: dict[str, Any]) -> Response:
        now = self.clock.monotonic()
        with self._state:
            limits = [] if self.per_second is None else [(self.per_second, 1.0)]
            if not self._windows.admit(hook.token, now, limits):
                return Response.text("rate_limited", 429, {"Retry-After": "1"})
            text = str(payload.get("text") or "")
            message = SlackMessage(
                hook.channel,
                text[:TEXT_CHARS],
                tuple(payload.get("blocks") or ()),
                payload,
                truncated=len(text) > TEXT_CHARS,
            )
            self._messages.append(message)
        return Response(200, b"ok", {"Content-Type": "text/html", "X-Slack-Req-Id": _req_id()})


def _req_id() -> str:
    return secrets.token_hex(8)


def _error(name: str) -> Response:
    headers = {"Content-Type": "text/html", "X-Slack-Req-Id": _req_id()}
    return Response(STATUS[name], name.encode(), headers)


def _served(slack: FakeSlack) -> Served:
    options = {"kind": "slack", "url": slack.webhook("#alerts")}
    return Served.for_channel(slack.root, "slack", options)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a fake Slack incoming webhook until interrupted, printing its address and a
    configuration pointed at it: ``python -m notifier_slack.testing [--config FILE]``."""
    return serve_from_shell("python -m notifier_slack.testing", FakeSlack, _served, argv)


if __name__ == "__main__":
    raise SystemExit(main())
