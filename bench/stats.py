"""Percentiles and rates, computed here rather than borrowed, so their definition is plain."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100) of an ascending sequence; None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Count, min, p50, p90, p99, max and mean in milliseconds of latencies in seconds."""
    ordered = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "count": len(ordered),
        "min_ms": ms(ordered[0] if ordered else None),
        "p50_ms": ms(percentile(ordered, 50)),
        "p90_ms": ms(percentile(ordered, 90)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1] if ordered else None),
        "mean_ms": ms(sum(ordered) / len(ordered) if ordered else None),
    }


def rate(count: float, seconds: float | None) -> float | None:
    """`count` per second, rounded; None when the interval is unknown or empty."""
    if not seconds or seconds <= 0:
        return None
    return round(count / seconds, 1)


def ratio(value: float | None, base: float | None) -> float | None:
    """`value / base` to three decimals; None when either is missing."""
    if value is None or not base:
        return None
    return round(value / base, 3)
