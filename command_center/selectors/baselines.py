"""Normal vs now for the vital cards (issue 16, part 1): the same hour of day on the previous seven days.

A card shows a value over a short window (`red.red_now`: the last 60 s of spans, or 5 flushed minutes of
metrics; saturation: the latest gauges). Its baseline is the same figure over **the same UTC hour of day**
(the hour `now` falls in) on each of the 7 previous days, read from the hourly rollup through
`metrics.aggregate(..., use_rollup=True)`, never from raw rows:

- `yesterday`: that hour one day ago; `last_week`: that hour seven days ago;
- `range_7d`: [min, max] of that hour over days 1..7 (days without data are left out, `days` counts the rest);
- `unusual`: the card's value lies outside `range_7d` (strictly below the min or above the max), judged only
  with at least `MIN_DAYS` days of history (else None, "not enough history"); `direction` says which side.
- `change` / `change_pct`: the value minus yesterday's / last week's (in the card's unit) and the same in %
  of the baseline (None when the baseline is 0 or missing).

Figures per hour, with the definitions the cards use: latency p95 from the hour's merged buckets (ms);
traffic = requests in the hour / 3600 s; error rate = 5xx / all requests of the hour (%); saturation = the
higher of mean DB pool active / mean pool max and mean OTel queue / mean capacity over the hour (%).

The numbers move once an hour, so they are cached for `CACHE_SECONDS` per hour of day; `compare` (run on every
summary request, after the live values are read) only does arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from command_center.selectors import metrics
from command_center.selectors.caching import cache_get, cache_set
from telemetry.contract import Label, Metric

CACHE_KEY = "baselines:v1"
CACHE_SECONDS = 300
HOUR = timedelta(hours=1)
DAYS = 7
MIN_DAYS = 3  # fewer days of history than this: no verdict on "unusual"
SECONDS_PER_HOUR = 3600
SERVER_ERROR = metrics.LabelMatch(Label.HTTP_STATUS_CODE, prefix="5")
VITALS = ("latency_p95", "traffic_rate", "error_rate", "saturation_pct")
SOURCE = "rollup_hourly"


def hour_of(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hourly(metric: str, hours: list[datetime], match=()) -> dict[int, metrics.Agg]:
    """Aggregates of `metric` per hour for `hours` (sorted), in one read of the hourly rollup."""
    aggs = metrics.aggregate(
        metric, hours[0], hours[-1] + HOUR, step_seconds=SECONDS_PER_HOUR, match=match, use_rollup=True
    )
    wanted = {metrics.bin_key(hour) for hour in hours}
    return {bin_start: agg for (bin_start, _), agg in aggs.items() if bin_start in wanted}


def _pct(part: metrics.Agg | None, whole: metrics.Agg | None) -> float | None:
    if part is None or whole is None or part.mean is None or whole.mean is None:
        return None
    return metrics.ratio_pct(part.mean, whole.mean)


def hour_figures(hours: list[datetime]) -> dict[str, dict[int, float | None]]:
    """{vital: {hour start (Unix s): value}} for each of `hours` that has data."""
    durations = _hourly(Metric.HTTP_REQUEST_DURATION_SECONDS, hours)
    requests = _hourly(Metric.HTTP_REQUESTS_TOTAL, hours)
    errors = _hourly(Metric.HTTP_REQUESTS_TOTAL, hours, match=[SERVER_ERROR])
    pairs = ((Metric.DB_POOL_CONNECTIONS_ACTIVE, Metric.DB_POOL_CONNECTIONS_MAX),
             (Metric.OTEL_QUEUE_SIZE, Metric.OTEL_QUEUE_CAPACITY))
    gauges = {metric: _hourly(metric, hours) for pair in pairs for metric in pair}
    figures: dict[str, dict[int, float | None]] = {name: {} for name in VITALS}
    for hour in hours:
        key = metrics.bin_key(hour)
        if key in durations and (p95 := durations[key].quantile(0.95)) is not None:
            figures["latency_p95"][key] = p95 * 1000
        if key in requests and requests[key].total > 0:
            figures["traffic_rate"][key] = requests[key].total / SECONDS_PER_HOUR
            errors_total = errors[key].total if key in errors else 0.0
            figures["error_rate"][key] = metrics.ratio_pct(errors_total, requests[key].total)
        pressures = [value for part, whole in pairs
                     if (value := _pct(gauges[part].get(key), gauges[whole].get(key))) is not None]
        if pressures:
            figures["saturation_pct"][key] = max(pressures)
    return figures


def _label(hour: datetime) -> str:
    end = hour + HOUR
    return f"{hour:%H:%M}–{end:%H:%M} UTC, same hour on the previous {DAYS} days"


def compute(now: datetime) -> dict[str, dict[str, Any]]:
    """The baselines of the four vitals for the hour of day `now` is in (no comparison with a value yet)."""
    hour = hour_of(now)
    days = [hour - timedelta(days=day) for day in range(DAYS, 0, -1)]  # 7 days ago .. yesterday
    figures = hour_figures(days)
    result = {}
    for name in VITALS:
        per_day = figures[name]
        present = [per_day[metrics.bin_key(day)] for day in days if metrics.bin_key(day) in per_day]
        result[name] = {
            "hour": hour,
            "window_seconds": SECONDS_PER_HOUR,
            "window_label": _label(hour),
            "source": SOURCE,
            "yesterday": per_day.get(metrics.bin_key(days[-1])),
            "last_week": per_day.get(metrics.bin_key(days[0])),
            "range_7d": [min(present), max(present)] if present else None,
            "days": len(present),
        }
    return result


def vital_baselines(now: datetime) -> dict[str, dict[str, Any]]:
    """`compute(now)`, cached `CACHE_SECONDS` per hour of day (the rollup only changes hourly)."""
    key = f"{CACHE_KEY}:{int(hour_of(now).timestamp())}"
    cached = cache_get(key)
    if cached is not None:
        return cached
    result = compute(now)
    cache_set(key, result, CACHE_SECONDS)
    return result


def _change(value: float | None, base: float | None) -> tuple[float | None, float | None]:
    if value is None or base is None:
        return None, None
    return value - base, (100.0 * (value - base) / base if base else None)


def judge(value: float | None, baseline: dict[str, Any]) -> dict[str, Any]:
    """`baseline` with the comparison of `value` against it: change, change_pct, unusual, direction."""
    span = baseline.get("range_7d")
    enough = span is not None and baseline.get("days", 0) >= MIN_DAYS
    direction = None
    if value is not None and enough:
        direction = "above" if value > span[1] else "below" if value < span[0] else None
    change_day, change_day_pct = _change(value, baseline.get("yesterday"))
    change_week, change_week_pct = _change(value, baseline.get("last_week"))
    return {
        **baseline,
        "change": {"yesterday": change_day, "last_week": change_week},
        "change_pct": {"yesterday": change_day_pct, "last_week": change_week_pct},
        "unusual": (direction is not None) if value is not None and enough else None,
        "direction": direction,
    }


def attach(cards: dict[str, dict[str, Any]], now: datetime) -> None:
    """Put each vital's baseline (as of `now`) into its card (`card["baseline"]`)."""
    for name, baseline in vital_baselines(now).items():
        if name in cards:
            cards[name]["baseline"] = baseline


def compare(cards: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The cards with their baselines judged against the values they show now (new dicts; none mutated)."""
    return {
        name: {**card, "baseline": judge(card.get("value"), card["baseline"])} if "baseline" in card else card
        for name, card in cards.items()
    }
