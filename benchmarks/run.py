"""Run the notifier benchmark: every figure against a baseline measured in the same run.

    python benchmarks/run.py                  # everything, about three minutes
    python benchmarks/run.py --quick          # smaller batches, fewer rounds: under a minute
    python benchmarks/run.py --only fanout --only startup --json /tmp/bench.json

Prints a table and writes every figure, the raw per-round numbers and the machine
description to ``benchmarks/results/latest.json`` (or ``--json PATH``). The exit status
is 0 when every target is met, 1 when one is missed. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

# Run as a script: make the repository root importable so ``benchmarks.*`` resolves.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (
    durable,
    scale_out,
    serve,
    startup,
    statements,
    webhook_throughput,
    wework_tokens,
)
from benchmarks.measure import Figure, machine
from benchmarks.scenario import Outcome, Settings

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"

SCENARIOS: dict[str, Callable[[Settings, Path], Outcome]] = {
    "sequential": lambda s, d: webhook_throughput.sequential(s, d, durable.sequential_variant()),
    "fanout": webhook_throughput.fanout,
    "tokens": wework_tokens.run,
    "outbox": durable.run,
    "startup": lambda s, d: startup.run(s),
    "statements": statements.run,
    "serve": serve.run,
    "scale-out": scale_out.run,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Measure notifier against plain-code baselines in one run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller batches and fewer rounds (< 1 minute)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help=f"run only these (repeat or comma-separate): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="PATH",
        help="where to write the results (default: benchmarks/results/latest.json)",
    )
    parser.add_argument(
        "--fanout-workers",
        type=int,
        default=8,
        metavar="N",
        help="dispatcher workers per channel in the fan-out scenario (default 8, as shipped)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for item in args.only or [] for name in item.split(",")]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenarios = [name for name in SCENARIOS if not chosen or name in chosen]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(quick=args.quick, fanout_workers=args.fanout_workers)
    report: dict[str, object] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "scenarios": {},
    }
    figures: list[Figure] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="notifier-bench-") as tmp:
        for name in args.scenarios:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            workdir = Path(tmp) / name
            workdir.mkdir()
            began, load_before = time.perf_counter(), _load()
            outcome = SCENARIOS[name](settings, workdir)
            figures.extend(outcome.figures)
            report["scenarios"][name] = {  # type: ignore[index]
                "seconds": round(time.perf_counter() - began, 2),
                # Other processes' load (1-minute average) before and after: a figure
                # measured while it exceeded the CPU count is noisier than usual.
                "load_average": [load_before, _load()],
                "pending": outcome.pending or None,
                "figures": [f.to_dict() for f in outcome.figures],
                "details": outcome.details,
            }
            if outcome.pending:
                print(f"  {name}: pending: {outcome.pending}", file=sys.stderr)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(table(figures))
    print(f"\n{report['seconds']} s; machine: {_machine_line(report['machine'])}")  # type: ignore[arg-type]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"results written to {args.json}")
    return 1 if any(f.passed is False for f in figures) else 0


def table(figures: list[Figure]) -> str:
    """The figures as a Markdown table (readable on a terminal, pasteable into docs)."""
    header = ("scenario", "figure", "notifier", "baseline", "ratio", "target", "result")
    rows = [header, tuple("---" for _ in header)]
    for f in figures:
        result = {True: "PASS", False: "MISS", None: "info"}[f.passed]
        rows.append(
            (
                f.scenario,
                f.name,
                _number(f.value, f.unit),
                f"{_number(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline else "-",
                _ratio(f),
                f.target_text or "-",
                result,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [
            "-" * width if cell == "---" else str(cell).ljust(width)
            for cell, width in zip(row, widths, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f} ms"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}"


def _ratio(figure: Figure) -> str:
    if figure.compare == "delta" and figure.delta is not None:
        return f"+{figure.delta:.1f} {figure.unit}" if figure.delta >= 0 else f"{figure.delta:.1f}"
    return f"{figure.ratio:.3f}x" if figure.ratio is not None else "-"


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _machine_line(info: dict[str, object]) -> str:
    return f"{info['cpu_count']} x {info['cpu_model']}, Python {info['python']}, {info['os']}"


if __name__ == "__main__":
    sys.exit(main())
