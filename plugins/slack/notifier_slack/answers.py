"""Reading an incoming webhook's answer.

Slack answers ``200 ok`` in plain text, a plain-text error name with a 4xx status
(``400 invalid_payload``, ``404 channel_not_found``, ``410 channel_is_archived``...), or
``429`` with ``Retry-After``. A 429 or 5xx is judged by its status (the HTTP layer
retries and paces on it); every other error name becomes a permanent
:class:`~notifier.errors.ProviderError` whose ``code`` is the name and whose message says
what to do about it.
"""

from __future__ import annotations

import re

import requests

from notifier.errors import ProviderError
from notifier.http import Parsed, check_status
from notifier.redact import redact

#: What each error Slack documents for incoming webhooks means for the person reading it.
HINTS: dict[str, str] = {
    "invalid_payload": "the message is not valid JSON or a block is malformed",
    "invalid_blocks": "a Block Kit block is malformed or over a size limit",
    "invalid_blocks_format": "the blocks are not a list of Block Kit blocks",
    "no_text": "the message has neither text nor blocks",
    "too_many_attachments": "the message has more than 100 attachments",
    "user_not_found": "the user the webhook posts to does not exist",
    "channel_not_found": (
        "the webhook's channel was deleted or renamed; create a new webhook for an "
        "existing channel and update 'url'"
    ),
    "channel_is_archived": (
        "the webhook's channel is archived; unarchive it or create a webhook for another channel"
    ),
    "action_prohibited": (
        "a workspace admin restricted posting to the webhook's channel; ask them to allow the app"
    ),
    "posting_to_general_channel_denied": (
        "only admins may post to the workspace's general channel; use another channel"
    ),
    "no_service": (
        "Slack does not know this webhook (the app was uninstalled or the URL is wrong); "
        "create a new webhook and update 'url'"
    ),
    "no_service_id": "the webhook URL is incomplete; copy it again from the Slack app",
    "no_team": "the webhook's workspace does not exist; create a new webhook",
    "team_disabled": "the webhook's workspace was disabled",
    "invalid_token": (
        "the webhook URL's token is invalid or was revoked; create a new webhook and update 'url'"
    ),
}

REQUEST_ID_HEADER = "X-Slack-Req-Id"
_ERROR_NAME = re.compile(r"[a-z][a-z0-9_]{1,63}")


def _error_name(response: requests.Response) -> str | None:
    """The error name at the start of a plain-text body, if the body is one."""
    first = response.text.strip().splitlines()[0].strip() if response.text.strip() else ""
    return first if _ERROR_NAME.fullmatch(first) else None


def webhook_answer(response: requests.Response) -> Parsed:
    """Parse an incoming webhook's answer: its text (and Slack's request id) on success.

    :raises RateLimited: for 429 (``retry_after`` from ``Retry-After``).
    :raises ProviderError: retryable for 5xx; permanent, with ``code`` set to Slack's
        error name, for every error name and any other 3xx/4xx.
    """
    status = response.status_code
    name = _error_name(response)
    if status == 429 or status >= 500 or (status >= 300 and name is None):
        check_status(response)  # raises: rate limited, server trouble, a proxy's error page
    if status < 300 and name not in HINTS:
        # "ok" from Slack; Slack-compatible servers may answer other text or JSON.
        return Parsed(response.text.strip(), response.headers.get(REQUEST_ID_HEADER))
    hint = HINTS.get(name or "", "see Slack's incoming webhook error list")
    raise ProviderError(
        f"Slack refused the message: {name} (HTTP {status}): {hint}",
        code=name,
        provider_message=redact(name or ""),
        request_id=response.headers.get(REQUEST_ID_HEADER),
    )
