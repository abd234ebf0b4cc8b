"""Scenario 5: ``notifier --version`` wall time against the bare interpreter.

Both commands run as fresh processes, alternately, many times; the figure is the
difference of the medians. One extra run with ``-X importtime`` lists the imports that
cost the most, which is where to look when the target is missed.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.measure import Figure, interleaved
from benchmarks.scenario import Outcome, Settings

TARGET_MS = 150.0


def console_script() -> list[str]:
    """The installed ``notifier`` command (next to this interpreter, else on PATH)."""
    beside = Path(sys.executable).with_name("notifier")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("notifier")
    if found:
        return [found]
    return [sys.executable, "-m", "notifier"]  # not installed as a script: the module


# An installed package has its bytecode cached (pip compiles it at install time). With
# PYTHONDONTWRITEBYTECODE set, as some containers do, a checkout's modules would be
# compiled from source on every start, which is not what users see.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_ms(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    return (time.perf_counter() - started) * 1000


def costliest_imports(command: list[str], top: int = 8) -> list[dict[str, object]]:
    """Modules by cumulative import time (microseconds) in one ``-X importtime`` run."""
    if Path(command[0]).name.startswith("python"):
        full = [command[0], "-X", "importtime", *command[1:]]
    else:  # a console script: run its file with the interpreter
        full = [sys.executable, "-X", "importtime", *command]
    done = subprocess.run(full, capture_output=True, text=True, check=False, env=ENV)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, cumulative_us, name = _split(line)
        rows.append({"module": name.strip(), "cumulative_us": int(cumulative_us)})
    rows.sort(key=lambda row: -int(row["cumulative_us"]))  # type: ignore[call-overload]
    return rows[:top]


def _split(line: str) -> tuple[str, str, str, str]:
    head, cumulative, name = line.split("|")
    prefix, self_us = head.split(":")
    return prefix, self_us.strip(), cumulative.strip(), name


def run(settings: Settings) -> Outcome:
    runs = settings.pick(quick=8, full=30)
    script = console_script()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "notifier --version": [*script, "--version"],
        "python -m notifier --version": [sys.executable, "-m", "notifier", "--version"],
    }
    results = interleaved({name: (lambda c=c: wall_ms(c)) for name, c in commands.items()}, runs)
    bare = statistics.median(results["python -c pass"])
    figures = [
        Figure(
            "5-start-up",
            "notifier --version",
            statistics.median(results["notifier --version"]),
            "ms",
            baseline=bare,
            baseline_name="python -c pass",
            target=TARGET_MS,
            compare="delta",
            op="<",
            note=f"median of {runs} runs each",
        ),
        Figure(
            "5-start-up",
            "python -m notifier --version (no target)",
            statistics.median(results["python -m notifier --version"]),
            "ms",
            baseline=bare,
            baseline_name="python -c pass",
            compare="delta",
        ),
    ]
    details = {
        "runs": runs,
        "command": commands["notifier --version"],
        "wall_ms": {k: [round(v, 1) for v in vs] for k, vs in results.items()},
        "costliest_imports": costliest_imports(commands["notifier --version"]),
        "bytecode_cache": "on (PYTHONDONTWRITEBYTECODE removed for these runs)"
        if "PYTHONDONTWRITEBYTECODE" in os.environ
        else "on",
    }
    return Outcome(figures, details)
