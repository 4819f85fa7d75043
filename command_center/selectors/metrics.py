"""Metric figures for panels: the aggregates come from `telemetry.queries.metrics` (which knows the tiers and
tables they are read from); this module adds what panels make of them.

The read API's names are re-exported here because every panel module reads them as `metrics.<name>`.
"""

from __future__ import annotations

from telemetry.queries.metrics import (
    BIN_ORIGIN,
    GROUP_SEPARATOR,
    SAMPLES_MAX_WINDOW,
    Agg,
    Key,
    LabelMatch,
    aggregate,
    any_sample_stored,
    bin_key,
    bins,
    by_label,
    known_label_values,
    latest_gauge,
    newest_of,
    newest_sample_ts,
    reads_rollup,
    sample_horizon,
    total,
)

__all__ = [
    "BIN_ORIGIN",
    "GROUP_SEPARATOR",
    "SAMPLES_MAX_WINDOW",
    "Agg",
    "Key",
    "LabelMatch",
    "aggregate",
    "any_sample_stored",
    "bin_key",
    "bins",
    "by_label",
    "known_label_values",
    "latest_gauge",
    "newest_of",
    "newest_sample_ts",
    "ratio_pct",
    "reads_rollup",
    "sample_horizon",
    "total",
    "window_label",
]


def ratio_pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def window_label(seconds: float) -> str:
    """A window's length as people write it: "1 h", "24 h", "7 d", "5 min", "90 s"."""
    seconds = round(seconds)
    for unit_seconds, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= unit_seconds and seconds % unit_seconds == 0 and not (unit == "d" and seconds < 2 * 86_400):
            return f"{seconds // unit_seconds} {unit}"
    return f"{seconds // 60} min" if seconds >= 600 else f"{seconds} s"
