"""The current value of every thresholded signal (contract section 10), and which of them are red.

Windows: API latency and error rate as `red.red_now` defines them (the last 60 s of live span windows, the
newest 20 s when only they are red, or the last 5 flushed minutes of request metrics); DB latency and OTel
rates over 5 minutes; voice join success and crash rate over 1 hour; voice quality p95s over the last hour
of connection_metrics; pool and memory from the latest gauges.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from command_center.selectors import metrics, red, voice
from command_center.thresholds import Status, status_for, thresholds
from telemetry.contract import Metric

FIVE_MINUTES = timedelta(minutes=5)
GAUGE_FRESHNESS = timedelta(minutes=5)
SERVER_ERROR = red.SERVER_ERROR


def _ms(seconds: float | None) -> float | None:
    return seconds * 1000 if seconds is not None else None


def latency_p95_ms(metric: str, start: datetime, end: datetime) -> float | None:
    return _ms(metrics.total(metric, start, end).quantile(0.95))


def server_error_rate_pct(start: datetime, end: datetime) -> float | None:
    requests = metrics.total(Metric.HTTP_REQUESTS_TOTAL, start, end).total
    errors = metrics.total(Metric.HTTP_REQUESTS_TOTAL, start, end, match=[SERVER_ERROR]).total
    return metrics.ratio_pct(errors, requests)


def gauge_ratio_pct(part_metric: str, whole_metric: str, now: datetime) -> float | None:
    part = metrics.latest_gauge(part_metric, now - GAUGE_FRESHNESS)
    whole = metrics.latest_gauge(whole_metric, now - GAUGE_FRESHNESS)
    if part is None or whole is None:
        return None
    return metrics.ratio_pct(part[0], whole[0])


def otel_export_failure_pct(start: datetime, end: datetime) -> float | None:
    failures = metrics.total(Metric.OTEL_EXPORT_FAILURES_TOTAL, start, end)
    exports = metrics.total(Metric.OTEL_EXPORTS_TOTAL, start, end)
    if not failures.rows and not exports.rows:
        return None
    return metrics.ratio_pct(failures.total, exports.total) if exports.total else 0.0


def dropped_spans(start: datetime, end: datetime) -> float | None:
    agg = metrics.total(Metric.OTEL_DROPPED_SPANS_TOTAL, start, end)
    return agg.total if agg.rows else None


def signal_values(now: datetime | None = None, red_now: red.RedNow | None = None) -> dict[str, float | None]:
    """Threshold key → current value (None without data); `red_now` if the caller already has it."""
    now = now or timezone.now()
    start = now - FIVE_MINUTES
    quality = voice.quality_p95(now - voice.QUALITY_WINDOW, now)
    api = red_now or red.red_now(now)
    return {
        "api_latency_p95_ms": api.latency_p95_ms,
        "api_error_rate_pct": api.error_rate_pct,
        "db_pool_pct": gauge_ratio_pct(
            Metric.DB_POOL_CONNECTIONS_ACTIVE, Metric.DB_POOL_CONNECTIONS_MAX, now
        ),
        "db_query_p95_ms": latency_p95_ms(Metric.DB_QUERY_DURATION_SECONDS, start, now),
        "voice_join_success_pct": voice.join_success_rate_pct(timedelta(hours=1), now),
        "voice_packet_loss_p95_pct": quality["packet_loss_p95_pct"],
        "voice_jitter_p95_ms": quality["jitter_p95_ms"],
        "voice_crash_rate_pct": voice.crash_rate_pct(timedelta(hours=1), now),
        "otel_export_failure_pct": otel_export_failure_pct(start, now),
        "otel_dropped_spans": dropped_spans(start, now),
        "memory_pct": gauge_ratio_pct(Metric.PROCESS_MEMORY_BYTES, Metric.PROCESS_MEMORY_LIMIT_BYTES, now),
    }


def status_of(key: str, value: float | None) -> str | None:
    return status_for(value, thresholds()[key]).value if value is not None else None


def alerts(values: dict[str, float | None]) -> dict[str, Any]:
    signals = {key: {"value": value, "status": status_of(key, value)} for key, value in values.items()}
    red = [key for key, signal in signals.items() if signal["status"] == Status.RED]
    return {"active": len(red), "red": red, "signals": signals}
