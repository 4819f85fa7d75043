"""Tier 1: vital signs with sparklines, the service health matrix, server metadata and active alerts.

The summary is computed at most every few seconds: beat refreshes it (`refresh_summary`) and a request
that finds no cached copy computes and caches it. A Redis outage only costs the caching.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from django.conf import settings
from django.utils import timezone

from command_center import probes
from command_center.push import VITAL_SIGN_KEYS
from command_center.selectors import alerts, baselines, metrics, red
from command_center.selectors.caching import cache_get, cache_set
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.freshness import freshness, sample_freshness
from command_center.selectors.server import server_metadata
from telemetry.contract import Metric

CACHE_KEY = "summary:v1"
CACHE_SECONDS = REFRESH_SECONDS["summary"]
SPARKLINE = timedelta(hours=1)
MINUTE = 60
WAITING_KEY = "_waiting_for_first_data"  # cached with the summary, never shown
METRICS_API_KEY = "_api_from_metrics"  # cached with the summary, never shown: `red.red_now`'s metrics answer


def process_started_at() -> datetime:
    return datetime.fromtimestamp(psutil.Process().create_time(), tz=UTC)


def _series(aggs: dict, timestamps: list[datetime], value) -> list[float | None]:
    keys = [(metrics.bin_key(moment), None) for moment in timestamps]
    return [value(aggs[key]) if key in aggs else None for key in keys]


def _saturation_series(per_step, timestamps: list[datetime]) -> list[float | None]:
    pool_active = per_step(Metric.DB_POOL_CONNECTIONS_ACTIVE)
    pool_max = per_step(Metric.DB_POOL_CONNECTIONS_MAX)
    queue = per_step(Metric.OTEL_QUEUE_SIZE)
    capacity = per_step(Metric.OTEL_QUEUE_CAPACITY)
    points = []
    for moment in timestamps:
        key = (metrics.bin_key(moment), None)
        candidates = [
            metrics.ratio_pct(part[key].mean or 0.0, whole[key].mean or 0.0)
            for part, whole in ((pool_active, pool_max), (queue, capacity))
            if key in part and key in whole
        ]
        present = [value for value in candidates if value is not None]
        points.append(max(present) if present else None)
    return points


def _saturation_now(now: datetime) -> tuple[float | None, str | None]:
    pressures = {
        "db_pool": alerts.gauge_ratio_pct(
            Metric.DB_POOL_CONNECTIONS_ACTIVE, Metric.DB_POOL_CONNECTIONS_MAX, now
        ),
        "otel_queue": alerts.gauge_ratio_pct(Metric.OTEL_QUEUE_SIZE, Metric.OTEL_QUEUE_CAPACITY, now),
    }
    known = {name: value for name, value in pressures.items() if value is not None}
    if not known:
        return None, None
    resource = max(known, key=known.get)
    return known[resource], resource


def _card(unit: str, threshold_key: str | None, value: float | None, sparkline: list[float | None],
          window_seconds: int, window_label: str, source: str | None) -> dict[str, Any]:
    return {
        "value": value,
        "unit": unit,
        "status": alerts.status_of(threshold_key, value) if threshold_key else None,
        "window_seconds": window_seconds,
        "window_label": window_label,
        "source": source,
        "sparkline": sparkline,
    }


def _api_cards(api: red.RedNow, sparklines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The three cards `red.red_now` defines, with the window and source they were read from."""
    window = (api.window_seconds, api.window_label, api.source)
    return {
        "latency_p95": _card("ms", "api_latency_p95_ms", api.latency_p95_ms, sparklines["latency_p95"], *window),
        "traffic_rate": _card("req/s", None, api.traffic_rate, sparklines["traffic_rate"], *window),
        "error_rate": _card("%", "api_error_rate_pct", api.error_rate_pct, sparklines["error_rate"], *window),
    }


def vital_series(start: datetime, end: datetime, step: int = MINUTE, use_rollup: bool = False
                 ) -> dict[str, list]:
    """The four vitals per `step`-second bin of [start, end) (`timestamps`: the bins' starts): latency p95 (ms),
    traffic (req/s), 5xx rate (%) and saturation (the higher gauge pressure, %); None where a bin has no data."""
    timestamps = metrics.bins(start, end, step)

    def per_step(metric: str, match=()) -> dict:
        return metrics.aggregate(metric, start, end, step_seconds=step, match=match, use_rollup=use_rollup)

    durations = per_step(Metric.HTTP_REQUEST_DURATION_SECONDS)
    requests = per_step(Metric.HTTP_REQUESTS_TOTAL)
    server_errors = per_step(Metric.HTTP_REQUESTS_TOTAL, match=[alerts.SERVER_ERROR])

    def error_pct(moment: datetime) -> float | None:
        key = (metrics.bin_key(moment), None)
        if key not in requests:
            return None
        return metrics.ratio_pct(
            server_errors[key].total if key in server_errors else 0.0, requests[key].total
        )

    return {
        "timestamps": timestamps,
        "latency_p95": [
            v * 1000 if v is not None else None
            for v in _series(durations, timestamps, lambda agg: agg.quantile(0.95))
        ],
        "traffic_rate": _series(requests, timestamps, lambda agg: agg.total / step),
        "error_rate": [error_pct(moment) for moment in timestamps],
        "saturation_pct": _saturation_series(per_step, timestamps),
    }


def _vital_signs(now: datetime, api: red.RedNow) -> dict[str, Any]:
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)  # include the current minute
    start = end - SPARKLINE
    series = vital_series(start, end)
    unix = [int(moment.timestamp()) for moment in series["timestamps"]]

    def sparkline(values: list[float | None]) -> dict[str, list]:
        return {"timestamps": unix, "values": values}

    sparklines = {name: sparkline(series[name]) for name in ("latency_p95", "traffic_rate", "error_rate")}
    saturation, resource = _saturation_now(now)
    cards = _api_cards(api, sparklines)
    cards["saturation_pct"] = _card(
        "%", "db_pool_pct", saturation, sparkline(series["saturation_pct"]),
        int(alerts.GAUGE_FRESHNESS.total_seconds()), "latest gauge", red.Source.METRICS if resource else None,
    )
    if resource:
        cards["saturation_pct"]["resource"] = resource
    baselines.attach(cards, now)  # same hour of day on the previous 7 days, from the hourly rollup
    return cards


def _server_metadata(now: datetime) -> dict[str, Any]:
    """Only what the platform reports (its resources' version/environment, active users, guilds); absent keys
    mean "not reported"."""
    server: dict[str, Any] = server_metadata(now)
    for key, metric in (("active_users", Metric.USERS_ACTIVE), ("guilds", Metric.GUILDS_TOTAL)):
        latest = metrics.latest_gauge(metric, now - timedelta(minutes=15))
        if latest is not None:
            server[key] = int(latest[0])
    return server


def _waiting_for_first_data(now: datetime) -> bool:
    """The first minute of a web process, or nothing stored yet (design section 15)."""
    started = (now - process_started_at()).total_seconds() < settings.COMMAND_CENTER_COLLECTING_SECONDS
    return started or not metrics.any_sample_stored()


def compute_summary(now: datetime | None = None) -> dict[str, Any]:
    """The whole summary as of `now`."""
    now = now or timezone.now()
    api = red.red_now(now)
    return _public(_with_live(_base_summary(now, api), now, api))


def _base_summary(now: datetime, api: red.RedNow) -> dict[str, Any]:
    """What is cached: everything, with the live part as of `now` (`_with_live` replaces it)."""
    signal_values = alerts.signal_values(now, api)
    newest_request = metrics.newest_sample_ts(Metric.HTTP_REQUESTS_TOTAL)
    return {
        "state": "ok",
        **sample_freshness(newest_request, REFRESH_SECONDS["summary"], now),
        "vital_signs": _vital_signs(now, api),
        "server": _server_metadata(now),
        "alerts": alerts.alerts(signal_values),
        WAITING_KEY: _waiting_for_first_data(now),
        # Without spans the API cards come from the flushed request metrics, which change once a minute: a served
        # summary reuses their answer (seconds old) rather than reading them on every request. "No data" is not
        # kept: the first data must show on the next request, not after the next refresh.
        METRICS_API_KEY: api if api.source == red.Source.METRICS else None,
    }


def _with_live(summary: dict[str, Any], now: datetime, api: red.RedNow | None = None) -> dict[str, Any]:
    """`summary` with what changes within seconds read anew: the API cards, the alerts that follow from them
    and the health matrix (each a Redis read). The cached rest (sparklines, gauges, voice) is seconds old."""
    api = api or red.red_now(now, metrics_answer=summary.get(METRICS_API_KEY))
    summary = {**summary, "vital_signs": {**summary["vital_signs"]}}
    for name, card in _api_cards(api, {name: summary["vital_signs"][name]["sparkline"]
                                       for name in ("latency_p95", "traffic_rate", "error_rate")}).items():
        summary["vital_signs"][name] = {**summary["vital_signs"][name], **card}
    values = {key: signal["value"] for key, signal in summary["alerts"]["signals"].items()}
    values.update(api_latency_p95_ms=api.latency_p95_ms, api_error_rate_pct=api.error_rate_pct)
    # A base cached while collecting is re-judged now: the first data must not wait for the next refresh.
    collecting = summary[WAITING_KEY] and api.source != red.Source.SPANS and _waiting_for_first_data(now)
    health = probes.health_matrix(now)
    summary.update(
        state="collecting" if collecting else "ok",
        alerts=alerts.alerts({key: None for key in values} if collecting else values),
        health={**freshness(health["updated_at"], REFRESH_SECONDS["health"], now), "services": health["services"]},
    )
    if collecting:
        summary["vital_signs"] = {name: {**card, "value": None, "status": None}
                                  for name, card in summary["vital_signs"].items()}
    summary["vital_signs"] = baselines.compare(summary["vital_signs"])  # against the values read just now
    return summary


def refresh_summary() -> dict[str, Any]:
    """Compute the summary and cache it (the beat task and cache misses call this)."""
    now = timezone.now()
    api = red.red_now(now)
    base = _base_summary(now, api)
    cache_set(CACHE_KEY, base, CACHE_SECONDS)
    return _public(_with_live(base, now, api))


def summary() -> dict[str, Any]:
    """The cached summary with its live part read now: an incident shows on the next request, not after
    the next refresh."""
    cached = cache_get(CACHE_KEY)
    if cached is None:
        return refresh_summary()
    return _public(_with_live(cached, timezone.now()))


def _public(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key not in (WAITING_KEY, METRICS_API_KEY)}


def vital_signs() -> dict[str, float | None]:
    """The four vital-sign values pushed every 5 s: latency_p95 (ms), traffic_rate (req/s), error_rate (%),
    saturation_pct (%); None while collecting or without data."""
    cards = summary()["vital_signs"]
    return {name: cards[name]["value"] for name in VITAL_SIGN_KEYS}
