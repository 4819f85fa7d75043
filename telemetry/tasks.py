"""Celery tasks: thin wrappers around the telemetry services (beat schedules them)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from telemetry import packing, partitions, retention, rollups
from telemetry.contract import RETENTION_DAYS
from telemetry.jobs import Job, job_run


@shared_task(name="telemetry.tasks.ensure_partitions")
def ensure_partitions() -> list[str]:
    """Daily partitions ahead and behind; none for minute samples past their tier, which retention would drop
    again within the hour (late samples for those days land in the default partition, which it empties)."""
    samples = retention.ROLLUP_SOURCE_TABLE
    with job_run(Job.ENSURE_PARTITIONS) as details:
        others = [table for table in partitions.PARTITIONED_TABLES if table != samples]
        sample_days = settings.TELEMETRY_SAMPLE_RETENTION_DAYS
        sample_days_back = sample_days if sample_days < RETENTION_DAYS else partitions.DEFAULT_DAYS_BACK
        details["created"] = (partitions.ensure_partitions(tables=others)
                              + partitions.ensure_partitions(tables=[samples], days_back=sample_days_back))
    return details["created"]


@shared_task(name="telemetry.tasks.refresh_rollups")
def refresh_rollups() -> dict[str, int]:
    return rollups.refresh_rollups()


@shared_task(name="telemetry.tasks.enforce_retention")
def enforce_retention() -> dict:
    return retention.enforce_retention().as_dict()


@shared_task(name="telemetry.tasks.pack_telemetry")
def pack_telemetry() -> dict:
    return packing.pack_due().as_dict()


@shared_task(name="telemetry.tasks.flush_metric_points")
def flush_metric_points() -> dict:
    from telemetry.ingest.buffer import flush_pending

    return flush_pending().as_dict()
