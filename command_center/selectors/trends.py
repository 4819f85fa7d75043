"""Tier 2: the time series of one catalogue metric over a window.

Windows up to 24 h read the minute samples with a step giving 60–720 points; longer windows read the
hourly rollup (plus the not-yet-rolled-up edges from the samples) with a step of whole hours.

The counters whose outcome share is a figure of the voice tab (join success of `kaiku_voice_joins_total`,
crash rate of `kaiku_voice_sessions_ended_total`) also get a `ratio`: per bin the share of that bin's summed
counts, and over the whole window the share the card shows for the same window (`voice.share_series`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from command_center.selectors import metrics, voice
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.freshness import sample_freshness
from telemetry.contract import CATALOGUE, Kind

MAX_POINTS = 720
SAMPLES_MAX_WINDOW = metrics.SAMPLES_MAX_WINDOW
# Steps that divide a day, so bins line up with minutes, hours and days.
MINUTE_STEPS = (60, 120, 300, 600, 900, 1800, 3600)
HOUR_STEPS = (3600, 7200, 10800, 21600, 43200, 86400)
# Long windows aim at about this many points; 720 hourly points of a 30-day chart cost 4× the rows to merge.
ROLLUP_TARGET_POINTS = 240
MAX_SERIES = 10


def choose_step(window: timedelta) -> tuple[int, bool]:
    """(step seconds, read the rollup?) for a window: at most 720 points, ≥ 60 unless the window is short."""
    seconds = window.total_seconds()
    if window <= SAMPLES_MAX_WINDOW:
        return next(step for step in MINUTE_STEPS if seconds / step <= MAX_POINTS), False
    return next((step for step in HOUR_STEPS if seconds / step <= ROLLUP_TARGET_POINTS), HOUR_STEPS[-1]), True


def unit_of(metric: str) -> str:
    if metric.endswith("_seconds"):
        return "ms"
    if metric.endswith("_bytes"):
        return "bytes"
    spec = CATALOGUE[metric]
    return "per_second" if spec.kind == Kind.COUNTER else "count"


def _values(
    kind: Kind, agg: metrics.Agg | None, covered_seconds: float, scale: float
) -> dict[str, float | None]:
    if agg is None:
        return {
            "histogram": {"p50": None, "p95": None, "p99": None},
            "counter": {"rate": None},
            "gauge": {"value": None},
        }[kind.value]
    if kind == Kind.HISTOGRAM:
        return {
            name: (value * scale if (value := agg.quantile(q)) is not None else None)
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
    if kind == Kind.COUNTER:
        return {"rate": agg.total / covered_seconds if covered_seconds > 0 else None}
    mean = agg.mean
    return {"value": mean * scale if mean is not None else None}


def _weights(aggs: dict[metrics.Key, metrics.Agg]) -> dict[str | None, float]:
    """How much of the metric each group holds: the series shown are the heaviest ones."""
    groups: dict[str | None, float] = {}
    for (_, group), agg in aggs.items():
        groups[group] = groups.get(group, 0.0) + (sum(agg.counts) if agg.counts else agg.total or agg.gauge_n)
    return groups


def _heaviest(groups: dict[str | None, float]) -> list[str]:
    return sorted((g for g in groups if g is not None), key=lambda g: -groups[g])[:MAX_SERIES]


def _shown_groups_match(metric: str, start: datetime, end: datetime, group_by: str) -> list[metrics.LabelMatch]:
    """Restricts a per-label chart over the samples to the groups it will show, ranked on the hourly rollup
    (plus the samples of the edge hours) without binning: the binned read then merges only their samples."""
    known = metrics.known_label_values(metric, group_by)
    if 0 < known < MAX_SERIES:  # every group is shown (one more may lack the label): nothing to restrict
        return []
    groups = _weights(metrics.aggregate(metric, start, end, group_label=group_by, use_rollup=True))
    heaviest = _heaviest(groups)
    # Rows lacking the label form the group '' (see metrics.aggregate); a value match cannot select them.
    if len(groups) <= MAX_SERIES or "" in heaviest:
        return []
    return [metrics.LabelMatch(group_by, values=tuple(heaviest))]


# `compare=`: the same window shifted back by a whole number of days, drawn over the chart (issue 16, part 1).
COMPARE_SHIFTS = {"yesterday": timedelta(days=1), "last_week": timedelta(days=7)}


def _series(kind: Kind, aggs: dict, chosen: list[str | None], group_by: str | None, start: datetime,
            end: datetime, step: int, scale: float) -> list[dict[str, Any]]:
    series = []
    for group in chosen:
        columns: dict[str, list[float | None]] = {}
        for moment in metrics.bins(start, end, step):
            # The first and last bins may be cut by the window: rates divide by the seconds covered.
            covered = (min(moment + timedelta(seconds=step), end) - max(moment, start)).total_seconds()
            for name, value in _values(kind, aggs.get((metrics.bin_key(moment), group)), covered, scale).items():
                columns.setdefault(name, []).append(value)
        series.append({"labels": {group_by: group} if group_by else {}, "values": columns})
    return series


def _compare(metric: str, start: datetime, end: datetime, group_by: str | None, chosen: list[str | None],
             compare: str, step: int, use_rollup: bool, match: list, scale: float) -> dict[str, Any]:
    """The same chart over the window `compare` days back, on the chart's own timestamps: the shift is whole
    days and every step divides a day, so bin i of the shifted window is bin i of the chart. The same groups
    as the chart (not the heaviest of the shifted window), so each line has its own comparison."""
    shift = COMPARE_SHIFTS[compare]
    aggs = metrics.aggregate(metric, start - shift, end - shift, group_label=group_by, step_seconds=step,
                             use_rollup=use_rollup, match=match)
    return {
        "name": compare,
        "shift_seconds": int(shift.total_seconds()),
        "from": start - shift,
        "to": end - shift,
        "series": _series(CATALOGUE[metric].kind, aggs, chosen, group_by, start - shift, end - shift, step, scale),
    }


def trend(metric: str, start: datetime, end: datetime, group_by: str | None = None,
          compare: str | None = None) -> dict[str, Any]:
    spec = CATALOGUE[metric]
    step, use_rollup = choose_step(end - start)
    match = _shown_groups_match(metric, start, end, group_by) if group_by and not use_rollup else []
    aggs = metrics.aggregate(
        metric, start, end, group_label=group_by, step_seconds=step, use_rollup=use_rollup, match=match
    )
    timestamps = metrics.bins(start, end, step)
    groups = _weights(aggs)
    chosen: list[str | None] = [None] if group_by is None else _heaviest(groups)
    scale = 1000.0 if metric.endswith("_seconds") else 1.0
    series = _series(spec.kind, aggs, chosen, group_by, start, end, step, scale)
    compared = (
        {"compare": _compare(metric, start, end, group_by, chosen, compare, step, use_rollup, match, scale)}
        if compare else {}
    )
    newest = metrics.newest_of(aggs.values())
    share = voice.SHARES_BY_METRIC.get(metric)
    ratio = {"ratio": voice.share_series(share, start, end, step, use_rollup)} if share else {}
    return {
        "metric": metric,
        "kind": spec.kind.value,
        "signal": spec.signal.value,
        "unit": unit_of(metric),
        "range": {
            "from": start,
            "to": end,
            "step_seconds": step,
            "source": "rollup_hourly" if use_rollup else "samples",
            "window_seconds": round((end - start).total_seconds()),
            "window_label": metrics.window_label((end - start).total_seconds()),
        },
        **sample_freshness(newest, REFRESH_SECONDS["trends"], timezone.now()),
        "timestamps": [int(moment.timestamp()) for moment in timestamps],
        "series": series,
        **ratio,
        **compared,
    }
