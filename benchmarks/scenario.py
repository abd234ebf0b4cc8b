"""What every scenario takes (run settings) and gives back (figures and details)."""

from __future__ import annotations

from typing import Any

import attrs

from benchmarks.measure import Figure


@attrs.frozen
class Settings:
    """Options of one benchmark run.

    :param quick: fewer rounds and smaller batches, for a check in well under a minute.
    :param fanout_workers: the dispatcher's ``workers`` (per channel lane) in scenario 2.
    """

    quick: bool = False
    fanout_workers: int = 8

    def pick(self, *, quick: int, full: int) -> int:
        return quick if self.quick else full


@attrs.frozen
class Outcome:
    """A scenario's figures, and the raw numbers behind them for the JSON file."""

    figures: list[Figure]
    details: dict[str, Any] = attrs.field(factory=dict)
    pending: str = ""  # why the scenario could not run yet, if it could not
