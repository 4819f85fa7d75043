"""Per-label minute samples as whole rows, newest first: what the metrics export downloads.

The export's columns are the samples' own fields (`EXPORT_FIELDS`); only the rows of the per-label sample tier
(`settings.TELEMETRY_SAMPLE_RETENTION_DAYS`) exist, older minutes live merged in the minute table and the
hourly rollup, which have no per-label rows to export.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from kaiku_ops.db_routers import read_alias
from telemetry.models import MetricSample

EXPORT_FIELDS = ("ts", "metric_name", "labels", "value_count", "value_sum", "value_p50", "value_p95", "value_p99")


def _samples(start: datetime, end: datetime, metric: str | None) -> QuerySet:
    rows = MetricSample.objects.using(read_alias()).filter(ts__gte=start, ts__lt=end)
    return rows.filter(metric_name=metric) if metric else rows


def export_rows(start: datetime, end: datetime, metric: str | None, limit: int, chunk_size: int) -> Iterator[tuple]:
    """At most `limit` samples of [start, end) (of `metric` only, when given) as tuples in EXPORT_FIELDS order,
    newest first, fetched `chunk_size` rows at a time."""
    rows = _samples(start, end, metric).order_by("-ts", "metric_name").values_list(*EXPORT_FIELDS)
    return rows[:limit].iterator(chunk_size=chunk_size)


def more_than(start: datetime, end: datetime, metric: str | None, count: int) -> bool:
    """Whether [start, end) holds more than `count` samples (of `metric` only, when given); reads at most one
    row past `count`."""
    beyond = _samples(start, end, metric).order_by().values_list("ts")
    return bool(list(beyond[count:count + 1]))
