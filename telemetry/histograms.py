"""Histogram math on OTLP-shaped explicit buckets: percentiles, merging, exponential conversion.

A histogram is `bounds` (n strictly increasing finite upper bounds) and `counts` (n + 1 bucket counts, the
last one for +Inf), exactly like OTLP `explicit_bounds` / `bucket_counts`. Bucket i holds observations in
(bounds[i-1], bounds[i]].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

PERCENTILES = (0.5, 0.95, 0.99)


def _validate(bounds: Sequence[float], counts: Sequence[int]) -> None:
    if len(counts) != len(bounds) + 1:
        raise ValueError(
            f"a histogram with {len(bounds)} bounds needs {len(bounds) + 1} counts, got {len(counts)}"
        )
    if any(not math.isfinite(bound) for bound in bounds):
        raise ValueError("histogram bounds must be finite numbers")
    if any(lower >= upper for lower, upper in zip(bounds, bounds[1:], strict=False)):
        raise ValueError("histogram bounds must be strictly increasing")
    if any(count < 0 for count in counts):
        raise ValueError("histogram counts must not be negative")


def quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) as Prometheus `histogram_quantile` estimates it; None without data.

    The rank q * total falls in a bucket and is interpolated linearly inside it. The first bucket starts at 0
    (or is its own bound when that is <= 0); a rank in the +Inf bucket yields the highest finite bound.
    """
    if not 0 <= q <= 1:  # also rejects NaN
        raise ValueError(f"quantile q must be between 0 and 1, got {q!r}")
    _validate(bounds, counts)
    cumulative = list(accumulate(counts))
    total = cumulative[-1]
    if total == 0 or not bounds:
        return None
    rank = q * total
    # The first bucket reaching the rank; `> 0` keeps q = 0 off empty leading buckets.
    bucket = next(i for i, seen in enumerate(cumulative) if seen >= rank and seen > 0)
    if bucket == len(bounds):
        return float(bounds[-1])
    if bucket == 0 and bounds[0] <= 0:
        return float(bounds[0])
    lower = bounds[bucket - 1] if bucket > 0 else 0.0
    below = cumulative[bucket - 1] if bucket > 0 else 0
    upper = bounds[bucket]
    return lower + (upper - lower) * (rank - below) / counts[bucket]


def percentiles(
    bounds: Sequence[float], counts: Sequence[int]
) -> tuple[float | None, float | None, float | None]:
    """(p50, p95, p99) of one histogram."""
    p50, p95, p99 = (quantile(bounds, counts, q) for q in PERCENTILES)
    return p50, p95, p99


def merge(
    a_bounds: Sequence[float], a_counts: Sequence[int], b_bounds: Sequence[float], b_counts: Sequence[int]
) -> tuple[list[float], list[int]]:
    """One histogram holding both. Different bounds merge onto their union: each source bucket is added to
    the union bucket with the same upper bound (exact for counts; finer buckets of the other side stay empty).
    """
    _validate(a_bounds, a_counts)
    _validate(b_bounds, b_counts)
    if list(a_bounds) == list(b_bounds):
        return [float(bound) for bound in a_bounds], [a + b for a, b in zip(a_counts, b_counts, strict=True)]
    bounds = sorted({float(bound) for bound in (*a_bounds, *b_bounds)})
    position = {bound: i for i, bound in enumerate(bounds)}
    counts = [0] * (len(bounds) + 1)
    for source_bounds, source_counts in ((a_bounds, a_counts), (b_bounds, b_counts)):
        for bound, count in zip(source_bounds, source_counts[:-1], strict=True):
            counts[position[float(bound)]] += count
        counts[-1] += source_counts[-1]
    return bounds, counts


def from_exponential(
    scale: int,
    zero_count: int,
    positive_offset: int,
    positive_counts: Sequence[int],
    negative_counts: Sequence[int],
) -> tuple[list[float], list[int]]:
    """An OTLP exponential histogram as explicit buckets.

    base = 2 ** (2 ** -scale); positive bucket i covers (base ** (offset + i), base ** (offset + i + 1)].
    The zero bucket has upper bound 0 and also takes the negative counts (latencies are never negative).
    An empty bucket ending at base ** offset keeps the first positive bucket's true lower edge.
    """
    if any(count < 0 for count in (zero_count, *positive_counts, *negative_counts)):
        raise ValueError("exponential histogram counts must not be negative")
    zero_bucket = zero_count + sum(negative_counts)
    if not positive_counts:
        return [0.0], [zero_bucket, 0]
    out_of_range = f"exponential histogram buckets out of range (scale {scale}, offset {positive_offset})"
    try:
        edges = [2.0 ** ((positive_offset + i) / 2.0**scale) for i in range(len(positive_counts) + 1)]
    except OverflowError:
        raise ValueError(out_of_range) from None
    if edges[0] <= 0.0 or any(lower >= upper for lower, upper in zip(edges, edges[1:], strict=False)):
        raise ValueError(out_of_range)
    return [0.0, *edges], [zero_bucket, 0, *positive_counts, 0]
