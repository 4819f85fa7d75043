"""The durable metric buffer (`telemetry_metric_points_pending`) and its minute flush.

The receiver commits each accepted delta here before answering 200; a re-sent point has the same
`point_id` and is ignored. Once a minute `flush_pending` turns the closed minutes into samples: it
reads and deletes the pending rows and writes the samples and the minute table rows summarising them
(telemetry/minutes.py) in ONE transaction, so a flush that dies half-way leaves everything pending and
nothing written, and the next flush does it exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from telemetry import histograms, minutes
from telemetry.contract import CATALOGUE, SCOPE_CLUSTER, Kind
from telemetry.ingest.copy_insert import copy_insert
from telemetry.ingest.outcome import from_unix_nanos
from telemetry.ingest.points import MetricPoint
from telemetry.models import MetricSample
from telemetry.storage import SAMPLE_COLUMNS, upsert_metric_samples

PENDING_TABLE = "telemetry_metric_points_pending"
PENDING_COLUMNS = ("point_id", "minute", "metric_name", "labels", "point_time_ns", "value_count", "value_sum",
                   "bucket_bounds", "bucket_counts")
_NANOS_PER_MINUTE = 60_000_000_000
_FLUSH_LOCK = "telemetry.flush_pending"
_SAMPLES_LOCK = "telemetry.metric_samples"  # the lock storage.upsert_metric_samples writes under


@dataclass(frozen=True)
class FlushReport:
    """`skipped`: another flush was running. `points` pending rows consumed, `samples` rows written."""

    skipped: bool = False
    points: int = 0
    samples: int = 0
    minutes: int = 0

    def as_dict(self) -> dict:
        return {"skipped": self.skipped, "points": self.points, "samples": self.samples,
                "minutes": self.minutes}


def minute_of(time_ns: int) -> datetime:
    return from_unix_nanos(time_ns - time_ns % _NANOS_PER_MINUTE)


def insert_pending(points: Iterable[MetricPoint], using: str = "default") -> int:
    """Buffer deltas (inside the caller's transaction); returns how many were new."""
    inserted = copy_insert(PENDING_TABLE, PENDING_COLUMNS, (_pending_row(point) for point in points),
                           returning=("point_id",), using=using)
    return len(inserted)


def flush_pending(
    now: datetime | None = None, include_open_minute: bool = False, using: str = "default"
) -> FlushReport:
    """Aggregate the buffered deltas of closed minutes (before the minute of `now`; with
    `include_open_minute`, all of them) into `telemetry_metric_samples` and remove them from the buffer."""
    now = now or timezone.now()
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [_FLUSH_LOCK])
        if not cursor.fetchone()[0]:
            return FlushReport(skipped=True)
        cutoff = now.replace(second=0, microsecond=0) + (timedelta(minutes=1) if include_open_minute
                                                         else timedelta(0))
        cursor.execute(
            f"""DELETE FROM {PENDING_TABLE} WHERE minute < %s
                RETURNING minute, metric_name, labels, point_time_ns, value_count, value_sum,
                          bucket_bounds, bucket_counts""",
            [cutoff],
        )
        consumed = cursor.fetchall()  # Django's connections read jsonb as text: labels are JSON strings
        samples = aggregate_minutes(consumed)
        # One rebuild of the touched minutes after all sample writes instead of one per statement.
        with minutes.triggers_deferred(cursor):
            written = _write_samples(cursor, samples, using)
            minutes.record(cursor, samples, now)
    return FlushReport(points=len(consumed), samples=written, minutes=len({row[0] for row in consumed}))


def aggregate_minutes(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """One sample per (minute, metric, labels) from pending rows (minute, metric, labels JSON, point time,
    count, sum, bounds, counts): counters add, gauges keep the latest point's value and count the
    observations, histograms merge their buckets and get p50/p95/p99 from the merged buckets."""
    samples: dict[tuple, dict[str, Any]] = {}
    latest: dict[tuple, int] = {}
    for minute, metric, labels, time_ns, count, total, bounds, counts in rows:
        key = (minute, metric, labels)
        sample = samples.get(key)
        if sample is None:
            samples[key] = {"ts": minute, "metric_name": metric, "scope": SCOPE_CLUSTER, "labels": labels,
                            "value_count": count, "value_sum": total, "bucket_bounds": bounds,
                            "bucket_counts": counts}
            latest[key] = time_ns
            continue
        sample["value_count"] += count
        if CATALOGUE[metric].kind is not Kind.GAUGE:
            sample["value_sum"] += total
        elif time_ns >= latest[key]:
            sample["value_sum"], latest[key] = total, time_ns
        if counts is not None:
            sample["bucket_bounds"], sample["bucket_counts"] = histograms.merge(
                sample["bucket_bounds"], sample["bucket_counts"], bounds, counts)
    for sample in samples.values():
        sample["labels"] = json.loads(sample["labels"])
        if sample["bucket_counts"] is not None:
            sample["value_p50"], sample["value_p95"], sample["value_p99"] = histograms.percentiles(
                sample["bucket_bounds"], sample["bucket_counts"])
    return list(samples.values())


def pending_depth(using: str = "default") -> int:
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {PENDING_TABLE}")
        return cursor.fetchone()[0]


def _write_samples(cursor, samples: list[dict[str, Any]], using: str) -> int:
    """COPY the samples of minutes not stored yet; merge the others (late points) through storage."""
    if not samples:
        return 0
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_SAMPLES_LOCK])
    cursor.execute(
        """SELECT metric_name, labels, ts FROM telemetry_metric_samples
           WHERE ts BETWEEN %s AND %s AND metric_name = ANY(%s) AND scope = %s""",
        [min(sample["ts"] for sample in samples), max(sample["ts"] for sample in samples),
         sorted({sample["metric_name"] for sample in samples}), SCOPE_CLUSTER],
    )
    stored = {(metric, _canonical_json(json.loads(labels)), ts) for metric, labels, ts in cursor.fetchall()}
    late, fresh = [], []
    for sample in samples:
        key = (sample["metric_name"], _canonical_json(sample["labels"]), sample["ts"])
        (late if key in stored else fresh).append(sample)
    with cursor.copy(f"COPY {MetricSample._meta.db_table} ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN") as copy:
        for sample in fresh:
            copy.write_row([_copy_value(column, sample.get(column)) for column in SAMPLE_COLUMNS])
    return len(fresh) + upsert_metric_samples(late, using=using)


def _pending_row(point: MetricPoint) -> tuple:
    if point.kind is Kind.HISTOGRAM:
        count, total, bounds, counts = point.count, point.total, point.bounds, point.counts
    elif point.kind is Kind.COUNTER:
        count, total, bounds, counts = round(point.value), float(point.value), None, None
    else:  # a gauge: one observation of a level
        count, total, bounds, counts = 1, float(point.value), None, None
    return (point.point_id, minute_of(point.time_ns), point.metric, _canonical_json(point.labels),
            point.time_ns, count, total, _array_literal(bounds), _array_literal(counts))


def _copy_value(column: str, value: Any) -> Any:
    if column == "labels":
        return _canonical_json(value)
    if column in ("bucket_bounds", "bucket_counts"):
        return _array_literal(value)
    return value


def _canonical_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _array_literal(values: Sequence[float] | None) -> str | None:
    # COPY parses text into the column's type; formatting the literal here is many times faster than
    # psycopg's per-element array dumper, which dominated the flush.
    return None if values is None else "{" + ",".join(map(repr, values)) + "}"
