"""Medians and percentiles (nearest-rank on sorted samples: no interpolation surprises)."""

from __future__ import annotations

import math
import statistics


def percentile(samples, p: float) -> float | None:
    values = sorted(samples)
    if not values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(values)))
    return values[rank - 1]


def median(samples) -> float | None:
    values = list(samples)
    return statistics.median(values) if values else None


def ratio(a, b) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0
