"""Figures, interleaved timing rounds and the machine description.

Shared machines are noisy: another process can halve a loop's speed for a second. So a
figure is never one long run of the notifier after one long run of the baseline. Each
round times every variant once, in a rotating order, over the same work; a round's ratio
compares variants measured seconds apart, and the figure is the median over rounds.
"""

from __future__ import annotations

import operator
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

_COMPARE = ("ratio", "delta", "value")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


@attrs.frozen
class Figure:
    """One measured figure, its baseline from the same run, and its target.

    :param compare: what the target applies to: ``"ratio"`` (value / baseline),
        ``"delta"`` (value - baseline) or ``"value"``.
    :param op: how the compared number must relate to ``target``: ``">="``, ``"<"``,
        ``"<="`` or ``"=="``.
    """

    scenario: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    compare: str = attrs.field(default="ratio", validator=attrs.validators.in_(_COMPARE))
    op: str = attrs.field(default=">=", validator=attrs.validators.in_(_OPS))
    note: str = ""
    paired_ratio: float | None = None  # median of per-round ratios, when rounds were paired

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None else self.value - self.baseline

    @property
    def passed(self) -> bool | None:
        checked = {"ratio": self.ratio, "value": self.value, "delta": self.delta}[self.compare]
        if self.target is None or checked is None:
            return None
        return _OPS[self.op](checked, self.target)

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        unit = {"ratio": "x", "delta": f" {self.unit} above", "value": f" {self.unit}"}
        return f"{self.op} {self.target:g}{unit[self.compare]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "delta": self.delta,
            "target": self.target_text or None,
            "pass": self.passed,
            "note": self.note,
        }


@attrs.frozen
class Sample:
    """One timed run: operations per wall-clock second, and CPU microseconds per operation
    of this whole process (all its threads), which the machine's other load disturbs less."""

    rate: float
    cpu_us: float


def interleaved(
    variants: Mapping[str, Callable[[], T]], rounds: int, warmup: int = 1
) -> dict[str, list[T]]:
    """Run every variant once per round, rotating the order, after ``warmup`` rounds.

    Each variant returns its own measurement; the lists keep the rounds aligned, so
    ``results[a][i]`` and ``results[b][i]`` were taken together.
    """
    names = list(variants)
    results: dict[str, list[T]] = {name: [] for name in names}
    for n in range(warmup + rounds):
        shift = n % len(names)
        for name in names[shift:] + names[:shift]:
            value = variants[name]()
            if n >= warmup:
                results[name].append(value)
    return results


def median_ratio(values: Sequence[Sample], baseline: Sequence[Sample]) -> float:
    """The median of per-round rate ratios: each compares two runs taken together."""
    return statistics.median(v.rate / b.rate for v, b in zip(values, baseline, strict=True))


def median_rate(samples: Sequence[Sample]) -> float:
    return statistics.median(s.rate for s in samples)


def median_cpu(samples: Sequence[Sample]) -> float:
    return statistics.median(s.cpu_us for s in samples)


def rate_figure(
    scenario: str,
    label: str,
    results: Mapping[str, Sequence[Sample]],
    name: str,
    against: str,
    baseline_name: str,
    target: float | None,
    note: str = "",
) -> Figure:
    """A throughput figure from paired rounds: medians, and the median per-round ratio."""
    cpu, base_cpu = median_cpu(results[name]), median_cpu(results[against])
    cpu_note = f"CPU {cpu:.0f} vs {base_cpu:.0f} us/delivery"
    return Figure(
        scenario,
        label,
        median_rate(results[name]),
        "deliveries/s",
        baseline=median_rate(results[against]),
        baseline_name=baseline_name,
        target=target,
        paired_ratio=median_ratio(results[name], results[against]),
        note="; ".join(part for part in (cpu_note, note) if part),
    )


def sample_details(results: Mapping[str, Sequence[Sample]], baseline: str) -> dict[str, Any]:
    """Every round's rate, CPU cost and ratio to ``baseline``, for the JSON file."""
    return {
        "rates": {k: [round(s.rate, 1) for s in v] for k, v in results.items()},
        "cpu_us_per_delivery": {k: [round(s.cpu_us, 1) for s in v] for k, v in results.items()},
        f"ratios_to_{baseline}": {
            k: [round(s.rate / b.rate, 3) for s, b in zip(v, results[baseline], strict=True)]
            for k, v in results.items()
            if k != baseline
        },
    }


def timed(count: int, run: Callable[[], object]) -> Sample:
    """Run ``run()`` (``count`` operations) and time it."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Sample(count / wall, cpu * 1e6 / count)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "packages": _versions("requests", "urllib3", "pluggy", "attrs"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def python_command(code: str) -> list[str]:
    return [sys.executable, "-c", code]
