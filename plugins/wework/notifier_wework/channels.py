"""The channel objects the WeCom kinds build, and what they do with an alert.

* :class:`DirectChannel` (kind ``wework``): the WeCom API with an access token; sends to an
  app group chat (``chat_id``) or as an application message (``agent_id`` and recipients),
  and creates, reads and updates app group chats.
* :class:`GatewayChannel` (kind ``wework-gateway``): the same group chats through the
  enterprise API gateway, which offers ``create_appchat/`` and ``send_appchat/`` only.
* :class:`~notifier_wework.robot.RobotChannel` (kind ``wework-robot``), in its own module.

Each holds one :class:`~notifier.http.HttpClient`; ``close()`` releases its connections.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import attrs

from notifier.errors import (
    ChannelError,
    InvalidRequest,
    NotifierError,
    ProviderError,
    UnsupportedOperation,
)
from notifier.http import CallResult, Endpoint, HttpClient
from notifier.models import Alert, DeliveryContext, GroupInfo, GroupSpec, GroupUpdate, SendResult
from notifier.parts import PartLedger, PartsSent, send_parts
from notifier.templates import message
from notifier_wework import endpoints as ep
from notifier_wework.messages import Overflow, body, contents, render
from notifier_wework.options import CHAT_ID

log = logging.getLogger("notifier.wework")

CHAT_NAME_CHARS = 50
PARTIAL_FIELDS = ("invaliduser", "invalidparty", "invalidtag", "unlicenseduser")


@attrs.frozen
class AppTarget:
    """Recipients of an application message: an agent and users, departments, tags."""

    agent_id: int
    users: tuple[str, ...] = ()
    parties: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


class WeComChannel:
    """What the three WeCom channels share: a client, a format and how to overflow."""

    kind: ClassVar[str] = ""
    #: the provider drops a repeat of this channel's sends, so a retry is harmless
    deduplicates: bool = False

    def __init__(
        self,
        name: str,
        client: HttpClient,
        *,
        msgtype: str,
        overflow: Overflow,
        ledger: PartLedger,
    ) -> None:
        self.name, self.client = name, client
        self.msgtype, self.overflow = msgtype, overflow
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        raise NotImplementedError

    def close(self) -> None:
        self.client.close()

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        """The request bodies a send delivers, in order (``notifier render`` shows them)."""
        raise NotImplementedError

    def _parts(
        self,
        alert: Alert,
        delivery: DeliveryContext,
        msgtype: str | None = None,
        suffix: str = "",
    ) -> list[str]:
        msgtype = msgtype or self.msgtype
        text = message(alert, delivery)
        if text is None:
            text = render(alert, msgtype)
        return contents(text, msgtype, self.overflow, suffix=suffix)

    def _send_all(
        self, bodies: Sequence[dict[str, Any]], endpoint: Endpoint, delivery: DeliveryContext
    ) -> PartsSent[CallResult]:
        def call(payload: dict[str, Any]) -> CallResult:
            return self.client.call(endpoint, json=payload)

        sent = send_parts(bodies, call, ledger=self.ledger, delivery=delivery)
        log.debug("channel %r: sent %d of %d part(s)", self.name, len(sent.results), sent.total)
        return sent

    def _unsupported(self, what: str, why: str) -> UnsupportedOperation:
        return UnsupportedOperation(f"channel {self.name!r} ({self.kind}): {what}: {why}")


def _ids(value: Any) -> list[str]:
    return [v for v in str(value or "").split("|") if v]


def _members(group: GroupSpec) -> list[str]:
    return list(dict.fromkeys([*([group.owner] if group.owner else []), *group.members]))


def _check_group(channel: WeComChannel, group: GroupSpec, chat_id: str | None) -> list[str]:
    members = _members(group)
    if len(members) < 2:
        raise InvalidRequest(
            f"channel {channel.name!r}: a WeCom group chat needs at least 2 members, owner "
            f"included; got {len(members)}",
            retryable=False,
            attempts=0,
        )
    if chat_id is not None:
        _check_chat_id(channel, chat_id)
    return members


def _check_chat_id(channel: WeComChannel, chat_id: str) -> None:
    if not CHAT_ID.fullmatch(chat_id):
        raise InvalidRequest(
            f"channel {channel.name!r}: a chat id is 1 to 32 letters and digits, got {chat_id!r}",
            retryable=False,
            attempts=0,
        )


class _GroupChat(WeComChannel):
    """A channel that sends to one app group chat by its id."""

    create_endpoint: ClassVar[Endpoint]
    send_endpoint: ClassVar[Endpoint]

    def __init__(
        self, name: str, client: HttpClient, *, chat_id: str | None, safe: bool, **common: Any
    ) -> None:
        super().__init__(name, client, **common)
        self.chat_id, self.safe = chat_id, safe

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        return self._chat_bodies(alert, delivery)

    def _chat_bodies(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        if not self.chat_id:
            raise ChannelError(
                f"channel {self.name!r} has neither chat_id nor agent_id: it can create and "
                "manage group chats but has nowhere to send; set chat_id (a group chat) or "
                "agent_id with to_user, to_party or to_tag (an application message)",
                retryable=False,
                attempts=0,
            )
        extra = {"safe": 1} if self.safe else {}
        return [
            {"chatid": self.chat_id, **body(self.msgtype, c), **extra}
            for c in self._parts(alert, delivery)
        ]

    def _send_chat(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        bodies = self._chat_bodies(alert, delivery)
        sent = self._send_all(bodies, self.send_endpoint, delivery)
        details: dict[str, Any] = {"chat_id": self.chat_id}
        request_ids = [r.request_id for r in sent.results if r.request_id]
        if request_ids:
            details["request_ids"] = request_ids
        if delivery.mentions:
            # App group chats have no mention fields; say so rather than drop them silently.
            details["mentions_not_sent"] = list(delivery.mentions)
        return sent.send_result(None, details)

    def create_group(self, group: GroupSpec) -> GroupInfo:
        # Without an explicit id, create the chat this channel is configured to send to.
        chat_id = group.chat_id or self.chat_id
        members = _check_group(self, group, chat_id)
        # WeCom picks a random member as owner when none is named; name one so the
        # answer we return is the group WeCom made.
        owner = group.owner or members[0]
        payload: dict[str, Any] = {"name": group.name, "owner": owner, "userlist": members}
        if chat_id:
            payload["chatid"] = chat_id
        data = self.client.call(self.create_endpoint, json=payload).data
        created = (data.get("chatid") if isinstance(data, dict) else None) or chat_id
        if not created:
            raise ProviderError(
                f"channel {self.name!r}: the group was created but the answer has no chatid",
                code=None,
            )
        return GroupInfo(
            chat_id=str(created),
            name=group.name[:CHAT_NAME_CHARS],  # WeCom cuts longer names
            owner=owner,
            members=members,
        )


class DirectChannel(_GroupChat):
    """Kind ``wework``: an app group chat or an application message, with a token."""

    kind = "wework"
    create_endpoint = ep.APPCHAT_CREATE
    send_endpoint = ep.APPCHAT_SEND

    def __init__(
        self,
        name: str,
        client: HttpClient,
        *,
        app: AppTarget | None,
        duplicate_check: int | None,
        **common: Any,
    ) -> None:
        super().__init__(name, client, **common)
        self.app = app
        self.duplicate_check = duplicate_check if app is not None else None
        # Only application messages with the duplicate check are dropped on repeat.
        self.deduplicates = self.duplicate_check is not None

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        if self.app is None:
            return self._send_chat(alert, delivery)
        return self._send_app(alert, delivery, self.app)

    def plan(self, alert: Alert, delivery: DeliveryContext) -> list[dict[str, Any]]:
        if self.app is None:
            return self._chat_bodies(alert, delivery)
        return self._app_bodies(alert, delivery, self.app)

    def _app_bodies(
        self, alert: Alert, delivery: DeliveryContext, app: AppTarget
    ) -> list[dict[str, Any]]:
        # A route's mentions are people to notify: they become recipients too.
        users = list(dict.fromkeys([*app.users, *delivery.mentions]))
        recipients = {"touser": users, "toparty": app.parties, "totag": app.tags}
        base: dict[str, Any] = {k: "|".join(v) for k, v in recipients.items() if v}
        base["agentid"] = app.agent_id
        if self.safe:
            base["safe"] = 1
        if self.duplicate_check is not None:
            base["enable_duplicate_check"] = 1
            base["duplicate_check_interval"] = self.duplicate_check
        return [{**base, **body(self.msgtype, c)} for c in self._parts(alert, delivery)]

    def _send_app(self, alert: Alert, delivery: DeliveryContext, app: AppTarget) -> SendResult:
        bodies = self._app_bodies(alert, delivery, app)
        endpoint = ep.MESSAGE_SEND if self.duplicate_check is None else ep.MESSAGE_SEND_CHECKED
        sent = self._send_all(bodies, endpoint, delivery)
        details: dict[str, Any] = {}
        message_ids = [str(r.data["msgid"]) for r in sent.results if r.data.get("msgid")]
        if len(message_ids) > 1:
            details["message_ids"] = message_ids
        for field in PARTIAL_FIELDS:  # delivered, but not to these recipients
            missed = [i for r in sent.results for i in _ids(r.data.get(field))]
            if missed:
                details[field] = list(dict.fromkeys(missed))
        return sent.send_result(message_ids[0] if message_ids else None, details)

    def get_group(self, chat_id: str) -> GroupInfo:
        _check_chat_id(self, chat_id)
        data = self.client.call(ep.APPCHAT_GET, params={"chatid": chat_id}).data
        info = data.get("chat_info") or {}
        return GroupInfo(
            chat_id=str(info.get("chatid") or chat_id),
            name=str(info.get("name") or ""),
            owner=info.get("owner") or None,
            members=info.get("userlist") or (),
        )

    def update_group(self, chat_id: str, update: GroupUpdate) -> GroupInfo:
        _check_chat_id(self, chat_id)
        payload: dict[str, Any] = {"chatid": chat_id}
        if update.name is not None:
            payload["name"] = update.name
        if update.owner is not None:
            payload["owner"] = update.owner
        if update.add_members:
            payload["add_user_list"] = list(update.add_members)
        if update.remove_members:
            payload["del_user_list"] = list(update.remove_members)
        self.client.call(ep.APPCHAT_UPDATE, json=payload)
        return self.get_group(chat_id)  # the update answers nothing about the result


class GatewayChannel(_GroupChat):
    """Kind ``wework-gateway``: app group chats through the enterprise API gateway."""

    kind = "wework-gateway"
    create_endpoint = ep.GATEWAY_CREATE
    send_endpoint = ep.GATEWAY_SEND

    def send(self, alert: Alert, delivery: DeliveryContext) -> SendResult:
        with _request_id_in_message():
            return self._send_chat(alert, delivery)

    def create_group(self, group: GroupSpec) -> GroupInfo:
        with _request_id_in_message():
            return super().create_group(group)

    def get_group(self, chat_id: str) -> GroupInfo:
        raise self._unsupported("reading a group", _GATEWAY_ONLY)

    def update_group(self, chat_id: str, update: GroupUpdate) -> GroupInfo:
        raise self._unsupported("changing a group", _GATEWAY_ONLY)


_GATEWAY_ONLY = (
    "the API gateway offers create_appchat/ and send_appchat/ only; use a 'wework' channel "
    "with the application's corp_id and secret"
)


@contextmanager
def _request_id_in_message() -> Iterator[None]:
    """Put the gateway's request id into a failure's message: support asks for it first."""
    try:
        yield
    except NotifierError as exc:
        request_id = exc.request_id
        if not request_id or request_id in exc.message:
            raise
        raise exc.with_context(suffix=f" (gateway request id {request_id})") from exc
