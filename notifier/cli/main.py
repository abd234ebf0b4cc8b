"""Entry point: global options, logging, and turning errors into one clear line.

Subcommand modules import their heavy dependencies inside their handlers, so
``notifier --version`` and ``notifier --help`` load no plugin and no HTTP stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from notifier import __version__

COMMANDS = (
    "notifier.cli.send",
    "notifier.cli.inspect",
    "notifier.cli.group",
    "notifier.cli.worker",
    "notifier.cli.queue",
    "notifier.cli.render",
)

# Exit statuses: every delivery succeeded / some failed / usage or configuration error.
OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad flags or input: printed as one line, exit status 2."""


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (before or after its name)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("global options")
    group.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="configuration file (default: $NOTIFIER_CONFIG, then ./notifier.toml)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log at INFO; -vv logs at DEBUG, HTTP libraries included (secrets masked)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log errors only",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks instead of one-line errors",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="notifier",
        description="Route alerts to WeCom and other channels, at once and durably.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"notifier {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        importlib.import_module(module).register(commands, common)
    return parser


def setup_logging(verbosity: int, *, quiet: bool = False, receipts_shown: bool = False) -> None:
    """Log to stderr at WARNING, INFO (``verbosity`` 1), DEBUG (2) or, ``quiet``, ERROR.

    :param receipts_shown: the command prints every delivery's receipt itself, so the
        per-delivery log lines (``notifier.deliveries``) are left out unless ``-v`` asks
        for them: a failure is said once.
    """
    import logging

    from notifier.redact import RedactingFilter, install_log_redaction

    install_log_redaction()
    if quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # records from any logger pass through here
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    shown_twice = receipts_shown and verbosity == 0
    logging.getLogger("notifier.deliveries").setLevel(
        logging.ERROR if shown_twice else logging.NOTSET
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help/--version
        return int(exc.code or 0)
    debug = getattr(args, "debug", False)
    setup_logging(
        getattr(args, "verbose", 0),
        quiet=getattr(args, "quiet", False),
        receipts_shown=getattr(args, "receipts_shown", False),
    )
    try:
        if getattr(args, "json", False):
            from notifier.cli.output import json_stdout

            with json_stdout():
                return int(args.handler(args))
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("notifier: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return FAILED
    except UsageError as exc:
        print(f"notifier {args.command}: error: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:
        if debug:
            raise
        return report(exc)


def report(exc: BaseException) -> int:
    """Print ``exc`` as one clear line (a config error: one line per problem)."""
    from notifier.errors import (
        ConfigError,
        InvalidRequest,
        NotifierError,
        PluginError,
        UnsupportedOperation,
    )
    from notifier.redact import redact, scrub_exception

    scrub_exception(exc)
    if isinstance(exc, NotifierError):
        print(f"notifier: error: {redact(str(exc))}", file=sys.stderr)
        usage = isinstance(exc, ConfigError | PluginError | UnsupportedOperation | InvalidRequest)
        return USAGE if usage else FAILED
    print(
        f"notifier: error: {type(exc).__name__}: {redact(str(exc))} (--debug shows the traceback)",
        file=sys.stderr,
    )
    return FAILED


if __name__ == "__main__":
    raise SystemExit(main())
