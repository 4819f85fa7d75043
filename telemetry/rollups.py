"""Hourly and daily trend rollups (materialized views carrying merged histogram buckets)."""

from __future__ import annotations

import time

from django.db import connections, transaction

from telemetry.jobs import Job, job_run

# Refresh order matters: the daily view is computed from the hourly one.
ROLLUP_VIEWS = ("telemetry_trend_rollups_hourly", "telemetry_trend_rollups")
# Lets the hourly grouping (about 160 label sets x 720 hours at `heavy`) stay in memory.
REFRESH_WORK_MEM = "128MB"


def refresh_rollups(concurrently: bool = True, using: str = "default") -> dict[str, int]:
    """Recompute both rollup views and record the run; returns each view's refresh time in ms.

    `concurrently` keeps the views readable during the refresh (it needs their unique indexes).
    """
    durations: dict[str, int] = {}
    with (job_run(Job.REFRESH_ROLLUPS, using=using) as details, transaction.atomic(using=using),
          connections[using].cursor() as cursor):
        cursor.execute("SELECT set_config('work_mem', %s, true)", [REFRESH_WORK_MEM])
        mode = "CONCURRENTLY " if concurrently else ""
        for view in ROLLUP_VIEWS:
            started = time.perf_counter()
            cursor.execute(f"REFRESH MATERIALIZED VIEW {mode}{view}")
            durations[view] = round((time.perf_counter() - started) * 1000)
        details.update(concurrently=concurrently, duration_ms_by_view=durations)
    return durations
