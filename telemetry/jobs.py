"""Records of maintenance job runs (`telemetry_job_runs`), which the command center shows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.utils import timezone

from telemetry.models import JobRun


class Job(StrEnum):
    PURGE = "purge_telemetry"
    REFRESH_ROLLUPS = "refresh_rollups"
    ENSURE_PARTITIONS = "ensure_partitions"
    PACK = "pack_telemetry"  # telemetry.packing.pack_due


@contextmanager
def job_run(job: Job, using: str = "default") -> Iterator[dict[str, Any]]:
    """Time the block and record it as a run of `job`; the block fills the yielded details dict.

    A failing block is recorded with `ok=False` and its error message, then the error propagates.
    """
    details: dict[str, Any] = {}
    started_at = timezone.now()
    started = time.perf_counter()
    try:
        yield details
    except Exception as error:
        details["error"] = str(error) or type(error).__name__
        _record(job, started_at, started, ok=False, details=details, using=using)
        raise
    _record(job, started_at, started, ok=True, details=details, using=using)


def _record(job: Job, started_at: datetime, started: float, ok: bool, details: dict, using: str) -> None:
    duration = time.perf_counter() - started
    JobRun.objects.using(using).create(
        job=job, started_at=started_at, finished_at=started_at + timedelta(seconds=duration),
        duration_ms=round(duration * 1000), ok=ok, details=details,
    )


def last_run(job: Job | str, using: str = "default") -> JobRun | None:
    return JobRun.objects.using(using).filter(job=job).order_by("-started_at").first()
