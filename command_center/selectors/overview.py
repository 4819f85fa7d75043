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
from command_center.selectors import alerts, metrics
from command_center.selectors.caching import cache_get, cache_set
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.freshness import freshness, sample_freshness
from command_center.selectors.server import server_metadata
from telemetry.contract import Metric

CACHE_KEY = "summary:v1"
CACHE_SECONDS = REFRESH_SECONDS["summary"]
SPARKLINE = timedelta(hours=1)
MINUTE = 60
VITAL_SIGNS = ("latency_p95", "traffic_rate", "error_rate", "saturation_pct")


def process_started_at() -> datetime:
    return datetime.fromtimestamp(psutil.Process().create_time(), tz=UTC)


def _series(aggs: dict, timestamps: list[datetime], value) -> list[float | None]:
    keys = [(metrics.bin_key(moment), None) for moment in timestamps]
    return [value(aggs[key]) if key in aggs else None for key in keys]


def _per_minute(metric: str, start: datetime, end: datetime, match=()) -> dict:
    return metrics.aggregate(metric, start, end, step_seconds=MINUTE, match=match, use_rollup=False)


def _saturation_series(start: datetime, end: datetime, timestamps: list[datetime]) -> list[float | None]:
    pool_active = _per_minute(Metric.DB_POOL_CONNECTIONS_ACTIVE, start, end)
    pool_max = _per_minute(Metric.DB_POOL_CONNECTIONS_MAX, start, end)
    queue = _per_minute(Metric.OTEL_QUEUE_SIZE, start, end)
    capacity = _per_minute(Metric.OTEL_QUEUE_CAPACITY, start, end)
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


def _vital_signs(now: datetime, signal_values: dict[str, float | None]) -> dict[str, Any]:
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)  # include the current minute
    start = end - SPARKLINE
    timestamps = metrics.bins(start, end, MINUTE)
    unix = [int(moment.timestamp()) for moment in timestamps]
    durations = _per_minute(Metric.HTTP_REQUEST_DURATION_SECONDS, start, end)
    requests = _per_minute(Metric.HTTP_REQUESTS_TOTAL, start, end)
    server_errors = _per_minute(Metric.HTTP_REQUESTS_TOTAL, start, end, match=[alerts.SERVER_ERROR])

    def error_pct(moment: datetime) -> float | None:
        key = (metrics.bin_key(moment), None)
        if key not in requests:
            return None
        return metrics.ratio_pct(
            server_errors[key].total if key in server_errors else 0.0, requests[key].total
        )

    last_minute_end = now.replace(second=0, microsecond=0)
    traffic = metrics.total(
        Metric.HTTP_REQUESTS_TOTAL, last_minute_end - timedelta(minutes=1), last_minute_end
    )
    saturation, resource = _saturation_now(now)
    cards = {
        "latency_p95": (
            "ms",
            "api_latency_p95_ms",
            300,
            signal_values["api_latency_p95_ms"],
            [
                v * 1000 if v is not None else None
                for v in _series(durations, timestamps, lambda agg: agg.quantile(0.95))
            ],
        ),
        "traffic_rate": (
            "req/s",
            None,
            60,
            traffic.total / MINUTE if traffic.rows else None,
            _series(requests, timestamps, lambda agg: agg.total / MINUTE),
        ),
        "error_rate": (
            "%",
            "api_error_rate_pct",
            300,
            signal_values["api_error_rate_pct"],
            [error_pct(moment) for moment in timestamps],
        ),
        "saturation_pct": ("%", "db_pool_pct", 300, saturation, _saturation_series(start, end, timestamps)),
    }
    result = {}
    for name, (unit, threshold_key, window, value, sparkline) in cards.items():
        result[name] = {
            "value": value,
            "unit": unit,
            "status": alerts.status_of(threshold_key, value) if threshold_key else None,
            "window_seconds": window,
            "sparkline": {"timestamps": unix, "values": sparkline},
        }
    if resource:
        result["saturation_pct"]["resource"] = resource
    return result


def _server_metadata(now: datetime) -> dict[str, Any]:
    """Only what the platform reports (its resources' version/environment, active users, guilds); absent keys
    mean "not reported"."""
    server: dict[str, Any] = server_metadata(now)
    for key, metric in (("active_users", Metric.USERS_ACTIVE), ("guilds", Metric.GUILDS_TOTAL)):
        latest = metrics.latest_gauge(metric, now - timedelta(minutes=15))
        if latest is not None:
            server[key] = int(latest[0])
    return server


def _null_values(vital_signs: dict[str, Any]) -> dict[str, Any]:
    for card in vital_signs.values():
        card["value"], card["status"] = None, None
    return vital_signs


def compute_summary(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    collecting = (
        now - process_started_at()
    ).total_seconds() < settings.COMMAND_CENTER_COLLECTING_SECONDS or not metrics.any_sample_stored()
    signal_values = alerts.signal_values(now)
    vital_signs = _vital_signs(now, signal_values)
    health = probes.health_matrix(now)
    newest_request = metrics.newest_sample_ts(Metric.HTTP_REQUESTS_TOTAL)
    return {
        "state": "collecting" if collecting else "ok",
        **sample_freshness(newest_request, REFRESH_SECONDS["summary"], now),
        "vital_signs": _null_values(vital_signs) if collecting else vital_signs,
        "health": {
            **freshness(health["updated_at"], REFRESH_SECONDS["health"], now),
            "services": health["services"],
        },
        "server": _server_metadata(now),
        "alerts": alerts.alerts({key: None for key in signal_values} if collecting else signal_values),
    }


def refresh_summary() -> dict[str, Any]:
    """Compute the summary and cache it (the beat task and cache misses call this)."""
    summary = compute_summary()
    cache_set(CACHE_KEY, summary, CACHE_SECONDS)
    return summary


def summary() -> dict[str, Any]:
    cached = cache_get(CACHE_KEY)
    return cached if cached is not None else refresh_summary()


def vital_signs() -> dict[str, float | None]:
    """The four vital-sign values pushed every 5 s: latency_p95 (ms), traffic_rate (req/s), error_rate (%),
    saturation_pct (%); None while collecting or without data."""
    cards = summary()["vital_signs"]
    return {name: cards[name]["value"] for name in VITAL_SIGNS}
