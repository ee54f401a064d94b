"""Percentiles and round summaries (no numpy: the harness runs with the project's own dependencies)."""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100), linear between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """One metric over rounds: the median and the min-max spread."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary | None":
        finite = [value for value in values if value is not None and math.isfinite(value)]
        if not finite:
            return None
        return cls(statistics.median(finite), min(finite), max(finite), len(finite))
