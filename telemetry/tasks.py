"""Celery tasks: thin wrappers around the telemetry services (beat schedules them)."""

from __future__ import annotations

from celery import shared_task

from telemetry import packing, partitions, retention, rollups
from telemetry.jobs import Job, job_run


@shared_task(name="telemetry.tasks.ensure_partitions")
def ensure_partitions() -> list[str]:
    """Daily partitions ahead and behind, by the policy of `partitions.ensure_kept_partitions`."""
    with job_run(Job.ENSURE_PARTITIONS) as details:
        details["created"] = partitions.ensure_kept_partitions()
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
