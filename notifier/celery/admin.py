"""What ``notifier worker`` and ``notifier queue`` do with ``[celery]``: run a worker,
show what is queued, in retry and dead, and put dead letters back in the queue."""

from __future__ import annotations

import logging
import os
import socket

import attrs

from notifier.celery.application import make_app, runtime
from notifier.celery.deadletters import DeadLetter, DeadLetters
from notifier.celery.jobs import Job, publish
from notifier.celery.settings import CelerySettings
from notifier.celery.state import SharedState
from notifier.clock import SYSTEM_CLOCK, Clock
from notifier.config import CONFIG_ENV

#: How `notifier worker` runs tasks: deliveries wait on the network, so threads (one
#: process, ``concurrency`` threads) use a machine as well as processes would, share one
#: dispatcher (connection pools, tokens) and die together with the worker.
POOL = "threads"


def run_worker(
    settings: CelerySettings, config_file: str, *, concurrency: int | None, verbosity: int
) -> None:
    """Run a Celery worker for the queue until it is stopped (SIGTERM, SIGINT: the tasks
    in hand finish first)."""
    config_file = os.path.abspath(config_file)
    os.environ[CONFIG_ENV] = config_file
    app = make_app(settings, config=config_file)
    runtime(app)  # the channels are built now: a broken config stops the worker at once
    level = {0: "WARNING", 1: "INFO"}.get(verbosity, "DEBUG")
    app.worker_main(
        [
            "worker",
            "--pool",
            POOL,
            "--concurrency",
            str(concurrency or settings.concurrency),
            "--queues",
            settings.queue,
            "--hostname",
            f"notifier-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            level,
        ]
    )
    logging.getLogger(__name__).info("worker stopped")


def open_state(settings: CelerySettings) -> SharedState:
    return SharedState.for_settings(settings)


def retry_dead(
    settings: CelerySettings,
    state: SharedState,
    ids: list[int] | None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[int, list[int]]:
    """Queue dead letters again (``None``: every one), each starting over (attempt 1,
    ``max_age`` from now); how many were, and the ids that name no dead letter."""
    dead = DeadLetters(state)
    wanted = dead.ids() if ids is None else list(dict.fromkeys(ids))
    keep = settings.max_age + settings.backoff_max + 3600
    app = make_app(settings)
    moved, missing = 0, []
    try:
        for dead_id in wanted:
            taken = dead.take(dead_id, keep)
            if taken is None:
                missing.append(dead_id)
                continue
            seq, letter = taken
            job = Job.from_payload(letter.payload)
            again = attrs.evolve(
                job, seq=seq, attempt=1, retrying=False, due=0.0, written_at=clock.time()
            )
            state.keep(again.channel, again.fingerprint, seq, again.to_payload())
            publish(app, settings, again)
            moved += 1
    finally:
        app.close()
    return moved, missing


def purge_dead(state: SharedState, ids: list[int] | None) -> tuple[int, list[int]]:
    """Delete dead letters (``None``: every one); how many, and the ids not found."""
    dead = DeadLetters(state)
    wanted = dead.ids() if ids is None else list(dict.fromkeys(ids))
    known = set(dead.ids())
    missing = [i for i in wanted if i not in known]
    return dead.purge(i for i in wanted if i in known), missing


__all__ = ["DeadLetter", "open_state", "purge_dead", "retry_dead", "run_worker"]
