"""``notifier channels`` (what is installed) and ``notifier check`` (is the config valid)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from notifier.cli.main import OK, USAGE


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "channels",
        parents=[common],
        help="list installed plugins and the channel kinds each provides",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=channels)
    p = commands.add_parser(
        "check",
        parents=[common],
        help="validate the configuration and build every channel; send nothing",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=check)


def channels(args: argparse.Namespace) -> int:
    from notifier.cli.output import print_json, table
    from notifier.plugins import PluginHost

    host = PluginHost.load()
    kinds = host.kinds
    if args.json:
        print_json(
            {
                "plugins": [
                    {"name": r.name, "distribution": r.dist, "status": r.status, "error": r.error}
                    for r in host.records
                ],
                "kinds": [
                    {
                        "kind": k.name,
                        "distribution": k.plugin,
                        "description": k.description,
                        "can_create_group": k.can_create_group,
                        "options": [
                            {
                                "name": o.name,
                                "expected": o.expected,
                                "required": o.required,
                                "secret": o.secret,
                                "help": o.help,
                            }
                            for o in k.options
                        ],
                    }
                    for k in sorted(kinds.values(), key=lambda k: k.name)
                ],
            }
        )
        return OK
    table(
        ["KIND", "DISTRIBUTION", "GROUPS", "DESCRIPTION"],
        [
            [k.name, k.plugin, "yes" if k.can_create_group else "", k.description]
            for k in sorted(kinds.values(), key=lambda k: (k.plugin, k.name))
        ],
    )
    for record in host.records:
        if record.status != "loaded":
            print(
                f"plugin {record.name} ({record.dist}): {record.status} {record.error}".rstrip(),
                file=sys.stderr,
            )
    return OK


def check(args: argparse.Namespace) -> int:
    from notifier.cli.output import print_json
    from notifier.dispatcher import Dispatcher
    from notifier.templates import check_config

    with Dispatcher.from_config(getattr(args, "config", None)) as dispatcher:
        config = dispatcher.config
        channels = {name: live.spec.kind for name, live in dispatcher.channels.items()}
        problems = [f"{p.name} ({p.dist}): {p.error}" for p in dispatcher.host.problems]
        template_problems = check_config(config, dispatcher.host.kinds)
        summary = {
            "file": config.file,
            "channels": channels,
            "routes": len(config.routes),
            "plugin_problems": problems,
        }
    if template_problems:
        # Rendered against sample alerts: each would fail a real delivery the same way.
        for line in template_problems:
            print(f"notifier: error: {config.file}: {line}", file=sys.stderr)
        return USAGE
    if args.json:
        print_json(summary)
    else:
        print(f"{config.file}: OK, {len(channels)} channel(s), {len(config.routes)} route(s)")
        for name, kind in channels.items():
            print(f"  {name}: {kind}")
    for problem in problems:
        print(f"warning: plugin {problem}", file=sys.stderr)
    return OK
