"""Every WeCom call the channels make, declared as :class:`notifier.http.Endpoint` records,
and how WeCom's error codes map onto :mod:`notifier.errors`.

Paths are relative to the channel's ``api_root`` (direct and robot) or ``gateway_root``
(the enterprise API gateway); roots are configuration, never constants. Endpoint names
are the provider's paths, so an error message points at the call a user can look up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import requests

from notifier.errors import AuthError, NotifierError
from notifier.http import Endpoint, ErrorCodes, errcode_envelope, gateway_envelope

PUBLIC_API_ROOT = "https://qyapi.weixin.qq.com/cgi-bin/"

GATEWAY_AUTH_FAILED = 1640001  # the gateway's own "app authentication failed"

CODES = ErrorCodes(
    token_invalid=(40014, 42001),  # the HTTP layer drops the token, fetches once, retries once
    busy=(-1, 45033),
    rate_limited=(45009,),
    auth=(40001, 40013, 48002, 60011, 93000, 93004),
    # Robots count a 60-second window and say nothing about when it frees up.
    rate_limit_wait=60.0,
)

#: What a user should do about each code they will meet; shown in the error message.
#: Whether a failure is retried is not the plugin's to say: the receipt says it (queued
#: with the next attempt time under ``[outbox]``, else how to get retries).
ADVICE: dict[int, str] = {
    -1: "WeCom is busy (a passing condition)",
    40001: "the secret is wrong, or is not the secret of this application (agent)",
    40003: "a user id is unknown in this corp",
    40008: "the message type is not supported here",
    40013: "corp_id is wrong",
    40056: "agent_id is not the application the secret belongs to",
    40058: "WeCom rejected a parameter (an over-long message, a bad chat id or member list)",
    41001: "no access token was sent; please report this as a bug",
    44004: "the message content is empty",
    45009: "over WeCom's frequency limit: lower the sending rate, or add a robot",
    45033: "too many concurrent calls (a passing condition)",
    48002: "this application may not call this API (app chats need a self-built app "
    "visible to the root department)",
    60011: "the application has no privilege for these members or departments",
    81013: "none of to_user, to_party, to_tag is a valid recipient",
    86001: "the chat id is unknown: create the group first (notifier group create) or fix chat_id",
    86215: "a chat with this id already exists: pick another chat id or send to it",
    93000: "the webhook key is wrong: copy the key= value of the robot's webhook URL",
    93004: "the robot was disabled or removed from its group: add a robot and use its key",
    GATEWAY_AUTH_FAILED: "the gateway rejected app_code, app_secret or username",
}

_AUTH_GATEWAY_CODES = frozenset({GATEWAY_AUTH_FAILED})

Parser = Callable[[requests.Response], Any]


def _advised(parse: Parser) -> Parser:
    """``parse`` with the advice for the error code put into the error's message.

    The provider's own text (which carries its support hint) is kept after the advice.
    A gateway's authentication failure becomes an :class:`AuthError`.
    """

    def wrapped(response: requests.Response) -> Any:
        try:
            return parse(response)
        except NotifierError as exc:
            code = exc.code
            advice = ADVICE.get(code) if isinstance(code, int) else None
            if advice is None:
                raise
            said = exc.provider_message
            label = "gateway code" if code == GATEWAY_AUTH_FAILED else "errcode"
            message = f"{label} {code}: {advice}" + (f" (WeCom: {said})" if said else "")
            if code in _AUTH_GATEWAY_CODES and not isinstance(exc, AuthError):
                raise AuthError(
                    message,
                    retryable=False,
                    code=code,
                    provider_message=said,
                    request_id=exc.request_id,
                ) from exc
            raise exc.with_context(message=message) from exc

    return wrapped


ENVELOPE = _advised(errcode_envelope(CODES))
GATEWAY_ENVELOPE = _advised(gateway_envelope(CODES))

# -- direct: the WeCom API with an access token ---------------------------------------------

GETTOKEN = Endpoint(
    "gettoken", "GET", "gettoken", parse=ENVELOPE, authenticated=False, description="token"
)
APPCHAT_CREATE = Endpoint(
    "appchat/create", "POST", "appchat/create", parse=ENVELOPE, description="create a group"
)
APPCHAT_GET = Endpoint("appchat/get", "GET", "appchat/get", parse=ENVELOPE)
# Setting the same name, owner and member changes twice leaves the same group.
APPCHAT_UPDATE = Endpoint(
    "appchat/update", "POST", "appchat/update", parse=ENVELOPE, idempotent=True
)
APPCHAT_SEND = Endpoint(
    "appchat/send", "POST", "appchat/send", parse=ENVELOPE, description="group message"
)
MESSAGE_SEND = Endpoint(
    "message/send", "POST", "message/send", parse=ENVELOPE, description="application message"
)
# With the duplicate check on, WeCom drops a repeat of the same message within the
# interval, so a busy answer or a dropped connection may be retried within the call.
MESSAGE_SEND_CHECKED = attrs.evolve(MESSAGE_SEND, idempotent=True)

# -- group robot: the key in the URL is the whole credential ----------------------------------

ROBOT_SEND = Endpoint(
    "webhook/send", "POST", "webhook/send", parse=ENVELOPE, description="robot message"
)

# -- the enterprise API gateway ---------------------------------------------------------------

GATEWAY_CREATE = Endpoint(
    "create_appchat",
    "POST",
    "create_appchat/",
    parse=GATEWAY_ENVELOPE,
    description="create a group through the gateway",
)
GATEWAY_SEND = Endpoint(
    "send_appchat",
    "POST",
    "send_appchat/",
    parse=GATEWAY_ENVELOPE,
    description="group message through the gateway",
)
