"""``notifier group create|show|update``: manage the group chats routes send to."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from notifier.cli.main import OK


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("group", parents=[common], help="create and manage group chats")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("create", parents=[common], help="create a group chat, print its id")
    p.add_argument("--channel", required=True, help="a configured channel that can create groups")
    p.add_argument("--name", required=True, help="the group's name")
    p.add_argument("--owner", help="the owner's user id (default: the provider's choice)")
    p.add_argument(
        "--member",
        action="append",
        default=[],
        required=True,
        metavar="USER",
        help="a member's user id (repeatable; the provider may require two)",
    )
    p.add_argument("--chat-id", help="choose the chat id instead of letting the provider")
    p.add_argument("--json", action="store_true", help="print the group as JSON")
    p.set_defaults(handler=create)

    p = actions.add_parser("show", parents=[common], help="show a group chat's members")
    p.add_argument("--channel", required=True)
    p.add_argument("--chat-id", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=show)

    p = actions.add_parser("update", parents=[common], help="rename, change owner, add/remove")
    p.add_argument("--channel", required=True)
    p.add_argument("--chat-id", required=True)
    p.add_argument("--name")
    p.add_argument("--owner")
    p.add_argument("--add", action="append", default=[], metavar="USER")
    p.add_argument("--remove", action="append", default=[], metavar="USER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=update)


def _print(info: Any, as_json: bool, verb: str) -> None:
    from notifier.cli.output import print_json

    if as_json:
        print_json(info.to_dict())
        return
    print(info.chat_id)  # alone on stdout, so scripts can capture it
    members = f", {len(info.members)} members" if info.members else ""
    print(f"{verb} group {info.name or info.chat_id!r}{members}", file=sys.stderr)


def create(args: argparse.Namespace) -> int:
    from notifier.dispatcher import Dispatcher
    from notifier.models import GroupSpec

    spec = GroupSpec(name=args.name, owner=args.owner, members=args.member, chat_id=args.chat_id)
    with Dispatcher.from_config(getattr(args, "config", None)) as dispatcher:
        info = dispatcher.create_group(args.channel, spec)
    _print(info, args.json, "created")
    return OK


def show(args: argparse.Namespace) -> int:
    from notifier.cli.output import print_json
    from notifier.dispatcher import Dispatcher

    with Dispatcher.from_config(getattr(args, "config", None)) as dispatcher:
        info = dispatcher.get_group(args.channel, args.chat_id)
    if args.json:
        print_json(info.to_dict())
        return OK
    # The group's facts are what show is for, so they go to stdout, one per line.
    rows = [
        ["chat id", info.chat_id],
        ["name", info.name],
        ["owner", info.owner or "-"],
        ["members", ", ".join(info.members) or "-"],
    ]
    for key, value in rows:
        print(f"{key + ':':9} {value}")
    return OK


def update(args: argparse.Namespace) -> int:
    from notifier.dispatcher import Dispatcher
    from notifier.models import GroupUpdate

    change = GroupUpdate(
        name=args.name, owner=args.owner, add_members=args.add, remove_members=args.remove
    )
    with Dispatcher.from_config(getattr(args, "config", None)) as dispatcher:
        info = dispatcher.update_group(args.channel, args.chat_id, change)
    _print(info, args.json, "updated")
    return OK
