"""The hourly trend rollup: a table of samples merged per hour, carrying merged histogram buckets.

Triggers on `telemetry_metric_samples` note each hour whose samples changed; a refresh recomputes
just those hours of the table. Readers never wait: the rows of an hour are replaced inside one
transaction. Trends of 7 and 30 days read it (telemetry.queries.metrics); there is no daily layer
(migration 0013 dropped the daily materialized view nobody read: a day cannot answer 1 h or 3 h bins).

Minute samples may be kept for fewer days than the rollups (`TELEMETRY_SAMPLE_RETENTION_DAYS`, the
sample tier). An hour past that horizon that already has rollup rows is not recomputed (its samples are
gone, and doing so would replace its rollup rows by the late arrivals alone); retention settles its marks
when it removes the samples (telemetry.retention). An hour past the horizon with no rollup rows yet (a
backfill such as `seed_demo`, or a sender's first data for that hour) has nothing to lose and is computed
from what its samples hold.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from telemetry.contract import RETENTION_DAYS
from telemetry.jobs import Job, job_run
from telemetry.models import HourlyTrendRollup, MetricSample

HOURLY_TABLE = HourlyTrendRollup._meta.db_table
# Lets a full recompute (about 160 label sets x 720 hours at `heavy`) group in memory.
REFRESH_WORK_MEM = "128MB"
_LOCK_KEY = "telemetry.rollups"
DIRTY_HOURS_TABLE = "telemetry_rollup_dirty_hours"

_HOURLY_ROWS_SQL = f"""
INSERT INTO {HOURLY_TABLE} (hour, metric_name, scope, labels, bucket_bounds, sample_count, first_ts, last_ts,
                            total_count, total_sum, bucket_counts)
    SELECT date_trunc('hour', ts, 'UTC') AS hour,
           metric_name,
           scope,
           labels,
           coalesce(bucket_bounds, ARRAY[]::double precision[]) AS bucket_bounds,
           count(*) AS sample_count,
           min(ts) AS first_ts,
           max(ts) AS last_ts,
           sum(value_count)::bigint AS total_count,
           sum(value_sum) AS total_sum,
           telemetry_bucket_sum(bucket_counts) AS bucket_counts
    FROM {MetricSample._meta.db_table}
    WHERE {{where}}
    GROUP BY 1, 2, 3, 4, 5
"""


def refresh_rollups(using: str = "default", full: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Bring the hourly rollup up to date and record the run; returns {table: refresh time in ms}.

    Only hours whose samples changed since the last refresh are recomputed, unless `full`. Hours past
    the sample tier's horizon (see `sample_tier_cutoff`) are never recomputed, not even by `full`.
    """
    durations: dict[str, int] = {}
    horizon = sample_tier_cutoff(now)
    with (job_run(Job.REFRESH_ROLLUPS, using=using) as details, transaction.atomic(using=using),
          connections[using].cursor() as cursor):
        lock_rollups(cursor)
        cursor.execute("SELECT set_config('work_mem', %s, true)", [REFRESH_WORK_MEM])
        started = time.perf_counter()
        if horizon is None:
            cursor.execute(f"DELETE FROM {DIRTY_HOURS_TABLE} RETURNING hour")
        else:
            cursor.execute(f"DELETE FROM {DIRTY_HOURS_TABLE} WHERE hour >= %s RETURNING hour", [horizon])
        hours = sorted(row[0] for row in cursor.fetchall())
        if full and horizon is None:
            cursor.execute(f"DELETE FROM {HOURLY_TABLE}")
            cursor.execute(_HOURLY_ROWS_SQL.format(where="true"))
        elif full:
            cursor.execute(f"DELETE FROM {HOURLY_TABLE} WHERE hour >= %s", [horizon])
            cursor.execute(_HOURLY_ROWS_SQL.format(where="ts >= %s"), [horizon])
        elif hours:
            recompute_hours(cursor, hours)
        if horizon is not None:
            recompute_hours_without_rollup(cursor, before=horizon)
        durations[HOURLY_TABLE] = _elapsed_ms(started)
        details.update(full=full, hours_recomputed=None if full else len(hours), duration_ms_by_view=durations)
    return durations


def sample_tier_cutoff(now: datetime | None = None) -> datetime | None:
    """The start of the oldest hour whose minute samples are kept, when they are kept for fewer days
    than the rollups; None when samples live as long as everything else (no sample tier)."""
    days = settings.TELEMETRY_SAMPLE_RETENTION_DAYS
    if days >= RETENTION_DAYS:
        return None
    horizon = (now or timezone.now()).astimezone(UTC) - timedelta(days=days)
    return horizon.replace(minute=0, second=0, microsecond=0)


def lock_rollups(cursor) -> None:
    """Serialise changes of the hourly rollup and its dirty-hour marks until the transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_LOCK_KEY])


def drop_hours_before(cutoff: datetime, using: str = "default", partial_hour: bool = False) -> int:
    """Delete hourly rollup rows of hours wholly before `cutoff` (retention dropped their samples);
    with `partial_hour` also the hour `cutoff` falls in, for when that hour cannot be recomputed."""
    bound = "%s::timestamptz" if partial_hour else "date_trunc('hour', %s::timestamptz, 'UTC')"
    with connections[using].cursor() as cursor:
        cursor.execute(f"DELETE FROM {HOURLY_TABLE} WHERE hour < {bound}", [cutoff])
        return cursor.rowcount


def recompute_hours(cursor, hours: list[datetime]) -> None:
    """Replace the hourly rows of `hours` by rows computed from their samples (hold `lock_rollups`)."""
    cursor.execute(f"DELETE FROM {HOURLY_TABLE} WHERE hour = ANY(%s)", [hours])
    # The ts range lets PostgreSQL prune partitions; the hour list keeps untouched hours out.
    cursor.execute(
        _HOURLY_ROWS_SQL.format(where="ts >= %s AND ts < %s::timestamptz + interval '1 hour'"
                                      " AND date_trunc('hour', ts, 'UTC') = ANY(%s)"),
        [hours[0], hours[-1], hours],
    )


def recompute_hours_without_rollup(cursor, before: datetime) -> list[datetime]:
    """Compute the marked hours before `before` that have no rollup rows yet (hold `lock_rollups`), clear
    their marks and return them: nothing of theirs was ever rolled up, so their samples are all there is."""
    cursor.execute(
        f"DELETE FROM {DIRTY_HOURS_TABLE} AS dirty WHERE hour < %s"
        f" AND NOT EXISTS (SELECT 1 FROM {HOURLY_TABLE} AS rollup WHERE rollup.hour = dirty.hour) RETURNING hour",
        [before],
    )
    hours = sorted(row[0] for row in cursor.fetchall())
    if hours:
        recompute_hours(cursor, hours)
    return hours


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
