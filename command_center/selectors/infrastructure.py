"""Tier 4: PostgreSQL, Valkey/Redis, S3, the OTel pipeline, and kaiku_ops's own ingest and retention.

Probe results come from the probe cache; metric figures from the samples. The whole payload is cached
for a few seconds like the summary (beat refreshes it; a miss computes it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from command_center import probes
from command_center.selectors import alerts, metrics
from command_center.selectors.caching import cache_get, cache_set, cached
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.freshness import freshness
from kaiku_ops.db_routers import read_alias
from telemetry.contract import RETENTION_DAYS, Metric
from telemetry.ingest.stats import receiver_stats
from telemetry.jobs import Job, last_run
from telemetry.queries import records

logger = logging.getLogger(__name__)

CACHE_KEY = "infrastructure:v1"
# Refreshed with every probe run (10 s); kept for two periods so a late beat never forces a request to wait.
CACHE_SECONDS = 2 * REFRESH_SECONDS["infrastructure"]
FIVE_MINUTES = timedelta(minutes=5)
SLOW_QUERY_WINDOW = timedelta(hours=24)
SLOW_QUERY_LIMIT = 10
# A day of db spans grouped by name (~0.4 s at `heavy`): recomputed once a minute, not with every 10 s refresh.
SLOW_QUERIES_CACHE_SECONDS = 60
REDIS_USED_FOR = ["rate limiting", "sessions", "blocks", "elevated admin cache"]


def slow_queries(now: datetime) -> list[dict[str, Any]]:
    """db spans (hot and packed) of the last SLOW_QUERY_WINDOW grouped by span name, slowest p95 first."""
    return [asdict(query) for query in records.slow_queries(now - SLOW_QUERY_WINDOW, now, SLOW_QUERY_LIMIT)]


def _gauge(metric: str, now: datetime) -> float | None:
    latest = metrics.latest_gauge(metric, now - FIVE_MINUTES)
    return latest[0] if latest else None


def _job(job: Job) -> dict[str, Any] | None:
    run = last_run(job, using=read_alias())
    if run is None:
        return None
    return {
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "ok": run.ok,
        "details": run.details,
    }


def _receiver_stats() -> dict[str, Any] | None:
    try:
        return receiver_stats()
    except Exception as error:  # stats live in Redis; an outage must not break the panel
        logger.warning("receiver stats unavailable: %s", type(error).__name__)
        return None


def compute_infrastructure(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    health = probes.health_matrix(now)
    services = {service["service"]: service for service in health["services"]}

    def probe(name: str) -> dict[str, Any]:
        service = services[name]
        return {"status": service["status"], "detail": service["detail"], "checked_at": service["checked_at"]}

    active, idle, pool_max = (
        _gauge(metric, now)
        for metric in (
            Metric.DB_POOL_CONNECTIONS_ACTIVE,
            Metric.DB_POOL_CONNECTIONS_IDLE,
            Metric.DB_POOL_CONNECTIONS_MAX,
        )
    )
    pool_pct = metrics.ratio_pct(active, pool_max) if active is not None and pool_max else None
    queries = metrics.total(Metric.DB_QUERY_DURATION_SECONDS, now - FIVE_MINUTES, now)
    query_p95 = alerts.latency_p95_ms(Metric.DB_QUERY_DURATION_SECONDS, now - FIVE_MINUTES, now)
    failure_pct = alerts.otel_export_failure_pct(now - FIVE_MINUTES, now)
    dropped = alerts.dropped_spans(now - FIVE_MINUTES, now)
    queue_pct = alerts.gauge_ratio_pct(Metric.OTEL_QUEUE_SIZE, Metric.OTEL_QUEUE_CAPACITY, now)
    s3_bucket = probes.s3_settings().get("bucket")
    return {
        **freshness(health["updated_at"], REFRESH_SECONDS["infrastructure"], now),
        "postgresql": {
            **probe("postgresql"),
            "pool": {
                "active": active,
                "idle": idle,
                "max": pool_max,
                "utilization_pct": pool_pct,
                "status": alerts.status_of("db_pool_pct", pool_pct),
            },
            "query_p95_ms": query_p95,
            "query_p95_status": alerts.status_of("db_query_p95_ms", query_p95),
            "query_rate_per_s": sum(queries.counts) / FIVE_MINUTES.total_seconds()
            if queries.counts
            else None,
            "slow_queries": cached("slow_queries", SLOW_QUERIES_CACHE_SECONDS, lambda: slow_queries(now), ()),
        },
        "redis": {**probe("redis"), "used_for": REDIS_USED_FOR},
        "s3": {**probe("s3"), "bucket": s3_bucket},
        "otel_pipeline": {
            **probe("otel_pipeline"),
            "export_failure_rate_pct": failure_pct,
            "export_failure_status": alerts.status_of("otel_export_failure_pct", failure_pct),
            "dropped_spans_5m": dropped,
            "dropped_spans_status": alerts.status_of("otel_dropped_spans", dropped),
            "queue_pct": queue_pct,
            "collector_endpoint": getattr(settings, "COMMAND_CENTER_OTEL_COLLECTOR_ENDPOINT", "") or None,
        },
        "ingest": {"receiver": _receiver_stats()},
        "retention": {
            "retention_days": RETENTION_DAYS,
            "last_purge": _job(Job.PURGE),
            "last_rollup_refresh": _job(Job.REFRESH_ROLLUPS),
        },
    }


def refresh_infrastructure() -> dict[str, Any]:
    payload = compute_infrastructure()
    cache_set(CACHE_KEY, payload, CACHE_SECONDS)
    return payload


def infrastructure() -> dict[str, Any]:
    cached = cache_get(CACHE_KEY)
    return cached if cached is not None else refresh_infrastructure()
