"""``notifier queue`` with ``[celery]``: counts, dead letters, retry and purge, read from
and done in the shared Redis state (:mod:`notifier.celery.admin`)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from notifier.cli.main import OK

if TYPE_CHECKING:
    from notifier.celery.settings import CelerySettings

STATES = ("queued", "retry", "dead")


def queue(settings: CelerySettings, args: argparse.Namespace) -> int:
    from notifier.celery.admin import open_state, purge_dead, retry_dead
    from notifier.celery.settings import redacted_url
    from notifier.cli.output import print_json, table
    from notifier.cli.queue import _age, _done, _ids

    state = open_state(settings)
    try:
        if args.retry is not None:
            ids = _ids(args.retry, args.all, "--retry")
            moved, missing = retry_dead(settings, state, ids)
            return _done(
                {"retried": moved}, f"{moved} dead letter(s) queued again", args.json, missing
            )
        if args.purge is not None:
            ids = _ids(args.purge, args.all, "--purge")
            gone, missing = purge_dead(state, ids)
            return _done({"purged": gone}, f"{gone} dead letter(s) deleted", args.json, missing)
        if args.dead:
            from notifier.celery.deadletters import DeadLetters

            letters = DeadLetters(state).letters(channel=args.channel, limit=args.limit)
            if args.json:
                print_json([d.to_dict() for d in letters])
                return OK
            now = time.time()
            rows = [
                [d.id, d.channel, d.attempts, _age(now - d.died_at), _short(d.title), d.error]
                for d in letters
            ]
            table(["ID", "CHANNEL", "ATTEMPTS", "DIED", "ALERT", "LAST ERROR"], rows)
            return OK
        counts = state.counts()
        where = redacted_url(settings.state)
        if args.json:
            print_json({"state": where, "queue": settings.queue, "channels": counts})
            return OK
        print(f"queue {settings.queue!r}, shared state at {where}")
        rows = [[ch, *(counts[ch][s] for s in STATES)] for ch in sorted(counts)]
        table(["CHANNEL", "QUEUED", "RETRY", "DEAD"], rows)
        return OK
    finally:
        state.close()


def _short(title: str) -> str:
    return title if len(title) <= 40 else title[:39] + "…"
