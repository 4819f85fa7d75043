"""Trend rollups carrying merged histogram buckets: hourly (a table) and daily (a materialized view).

Triggers on `telemetry_metric_samples` note each hour whose samples changed; a refresh recomputes
just those hours of the hourly table, then refreshes the daily view from it. Readers never wait:
the hourly rows of an hour are replaced inside one transaction.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.db import connections, transaction

from telemetry.contract import Label
from telemetry.jobs import Job, job_run

HOURLY_TABLE = "telemetry_trend_rollups_hourly"
DAILY_VIEW = "telemetry_trend_rollups"
ROLLUP_VIEWS = (HOURLY_TABLE, DAILY_VIEW)
# Lets a full recompute (about 160 label sets x 720 hours at `heavy`) group in memory.
REFRESH_WORK_MEM = "128MB"
_LOCK_KEY = "telemetry.rollups"

# last_value: the value of the latest sample, through max() over [time, value] arrays (unlike an
# ordered aggregate, this allows hash aggregation).
_HOURLY_ROWS_SQL = f"""
INSERT INTO {HOURLY_TABLE}
SELECT hour, metric_name, scope, labels ->> '{Label.HTTP_ROUTE}', labels, bucket_bounds,
       sample_count, first_ts, last_ts, total_count, error_count, total_sum, max_value, last_value,
       avg_p95, max_p95, bucket_counts
FROM (
    SELECT date_trunc('hour', ts, 'UTC') AS hour,
           metric_name,
           scope,
           labels,
           coalesce(bucket_bounds, ARRAY[]::double precision[]) AS bucket_bounds,
           count(*) AS sample_count,
           min(ts) AS first_ts,
           max(ts) AS last_ts,
           sum(value_count)::bigint AS total_count,
           coalesce(sum(value_count) FILTER (
               WHERE left(labels ->> '{Label.HTTP_STATUS_CODE}', 1) = '5'), 0)::bigint AS error_count,
           sum(value_sum) AS total_sum,
           max(value_sum) AS max_value,
           (max(ARRAY[extract(epoch FROM ts)::float8, value_sum]))[2] AS last_value,
           avg(value_p95) AS avg_p95,
           max(value_p95) AS max_p95,
           telemetry_bucket_sum(bucket_counts) AS bucket_counts
    FROM telemetry_metric_samples
    WHERE {{where}}
    GROUP BY 1, 2, 3, 4, 5
) AS hours
"""


def refresh_rollups(concurrently: bool = True, using: str = "default", full: bool = False) -> dict[str, int]:
    """Bring both rollups up to date and record the run; returns each one's refresh time in ms.

    Only hours whose samples changed since the last refresh are recomputed, unless `full`.
    `concurrently` keeps the daily view readable while it refreshes (it needs its unique index).
    """
    durations: dict[str, int] = {}
    with (job_run(Job.REFRESH_ROLLUPS, using=using) as details, transaction.atomic(using=using),
          connections[using].cursor() as cursor):
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_LOCK_KEY])
        cursor.execute("SELECT set_config('work_mem', %s, true)", [REFRESH_WORK_MEM])
        started = time.perf_counter()
        cursor.execute("DELETE FROM telemetry_rollup_dirty_hours RETURNING hour")
        hours = sorted(row[0] for row in cursor.fetchall())
        if full:
            cursor.execute(f"DELETE FROM {HOURLY_TABLE}")
            cursor.execute(_HOURLY_ROWS_SQL.format(where="true"))
        elif hours:
            _recompute_hours(cursor, hours)
        durations[HOURLY_TABLE] = _elapsed_ms(started)
        started = time.perf_counter()
        cursor.execute(f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if concurrently else ''}{DAILY_VIEW}")
        durations[DAILY_VIEW] = _elapsed_ms(started)
        details.update(concurrently=concurrently, full=full, hours_recomputed=None if full else len(hours),
                       duration_ms_by_view=durations)
    return durations


def drop_hours_before(cutoff: datetime, using: str = "default") -> int:
    """Delete hourly rollup rows of hours wholly before `cutoff` (retention dropped their samples)."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"DELETE FROM {HOURLY_TABLE} WHERE hour < date_trunc('hour', %s::timestamptz, 'UTC')",
                       [cutoff])
        return cursor.rowcount


def _recompute_hours(cursor, hours: list[datetime]) -> None:
    cursor.execute(f"DELETE FROM {HOURLY_TABLE} WHERE hour = ANY(%s)", [hours])
    # The ts range lets PostgreSQL prune partitions; the hour list keeps untouched hours out.
    cursor.execute(
        _HOURLY_ROWS_SQL.format(where="ts >= %s AND ts < %s::timestamptz + interval '1 hour'"
                                      " AND date_trunc('hour', ts, 'UTC') = ANY(%s)"),
        [hours[0], hours[-1], hours],
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
