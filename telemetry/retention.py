"""The 30-day hard cap on every native telemetry table, and the shorter tiers inside it.

Whole daily partitions older than the cutoff are dropped (cheap); expired rows of the boundary
partition and of the default partition are deleted; then the rollups are refreshed so they
hold nothing older either. One transaction per table, under the same advisory lock as partition
creation, so two overlapping runs (or a run and `ensure_partitions`) queue instead of colliding.

Log records and spans are stored as hot rows and as packed chunks (telemetry.packing). An operator
thinks of "the logs", so `telemetry_log_events` / `telemetry_trace_index` stand for both: their purge
also drops the chunk partitions past the cutoff and rewrites the chunks straddling it without their
expired rows, in the same transaction. The chunk tables are not purge targets of their own.

Two tiers keep some rows for less than the cap:
- per-label minute samples live `TELEMETRY_SAMPLE_RETENTION_DAYS` (whole hours); the hourly rollup
  built from them keeps its 30 days. Removing the samples must not wipe the rollup:
  the triggers of migration 0003 mark every hour a DELETE touches for recomputation, so the tier folds
  still-pending hours into the rollup first, then removes the samples and their marks in one transaction.
- spans kept only because their trace was sampled (`kept_reason` 'p') live
  `TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS`, removed once their whole UTC day is past it. By then they live in
  chunks (the packing job packs every hour older than an hour or so): each day partition of trace chunks is
  rewritten once without them, in one transaction, and compacted; the few still hot are deleted.

The state of cumulative metric streams (`telemetry_metric_streams`) goes with the metric buffer's purge, but
always by the fixed 30-day rule of `streams.expire_idle_states`, never by a shorter `older_than_days`: removing
the state of a stream that may still send would count its history twice (that function says why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from telemetry import error_groups, minutes, span_aggregates
from telemetry.contract import RETENTION_DAYS
from telemetry.ingest import buffer, streams
from telemetry.ingest.traces import KeptReason
from telemetry.jobs import Job, job_run
from telemetry.models import JobRun, MetricSample, Series, ServiceInstance
from telemetry.packing import LOGS, TRACES, PackedShape, compact_partition, forget_trace_hours, repack_chunks
from telemetry.partitions import day_partitions, lock_partitions, partition_name, partitioned_tables
from telemetry.rollups import (
    DIRTY_HOURS_TABLE,
    drop_hours_before,
    lock_rollups,
    recompute_hours,
    recompute_hours_without_rollup,
    refresh_rollups,
    sample_tier_cutoff,
)

logger = logging.getLogger(__name__)

# Unpartitioned tables under the same cap -> the column that dates a row.
PENDING_TABLE = buffer.PENDING_TABLE  # its purge also expires idle stream state
UNPARTITIONED_TABLES: Mapping[str, str] = {
    Series._meta.db_table: "last_seen",
    JobRun._meta.db_table: "started_at",
    PENDING_TABLE: "minute",
    ServiceInstance._meta.db_table: "last_seen",
    # Error groups (telemetry.error_groups): minute counts by minute, hour counts by hour, day counts by day (the
    # hour and the day holding the cutoff are then rebuilt from what is left), a group once it is last seen past
    # the cap.
    error_groups.MINUTES_TABLE: "ts",
    error_groups.HOURS_TABLE: "hour",
    error_groups.DAYS_TABLE: "day",
    error_groups.GROUPS_TABLE: "last_seen",
}
# Hot table -> how its packed rows are stored; purging the hot table purges its chunks too.
PACKED_TABLES: Mapping[str, PackedShape] = {LOGS.hot_table: LOGS, TRACES.hot_table: TRACES}
CHUNK_TABLES: Mapping[str, str] = {shape.chunk_table: hot for hot, shape in PACKED_TABLES.items()}
RETENTION_TABLES: Mapping[str, str] = {
    **{table: column for table, column in partitioned_tables().items() if table not in CHUNK_TABLES},
    **UNPARTITIONED_TABLES,
}
ROLLUP_SOURCE_TABLE = MetricSample._meta.db_table
TRACE_TABLE = TRACES.hot_table
# A telemetry_job_runs row the sample tier writes in its own transaction: the next run reads its horizon back.
SAMPLE_TIER_JOB = "purge_telemetry.sample_tier"
_BEGINNING_OF_TIME = datetime.min.replace(tzinfo=UTC)  # a dry run's lower bound when nothing is counted twice


class RetentionError(Exception):
    """Bad arguments or a failed purge; the message is one line meant for an operator."""


@dataclass
class TableReport:
    table: str
    partitions_dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0  # all rows removed, including those of dropped partitions
    duration_ms: int = 0
    tier: str = ""  # what a tier removes, e.g. "minute samples older than 3 days"; "" for the cap
    packed_rows_deleted: int = 0  # of rows_deleted, those that were packed in chunks


@dataclass
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    tables: list[TableReport]
    tiers: list[TableReport] = field(default_factory=list)
    rollups_refreshed: bool = False
    duration_ms: int = 0
    sample_tier_cutoff: datetime | None = None  # the horizon the sample tier purged to, when it ran

    @property
    def rows_deleted(self) -> int:
        return sum(report.rows_deleted for report in (*self.tables, *self.tiers))

    @property
    def partitions_dropped(self) -> int:
        return sum(len(report.partitions_dropped) for report in (*self.tables, *self.tiers))

    def as_dict(self) -> dict:
        tier_cutoff = self.sample_tier_cutoff.isoformat() if self.sample_tier_cutoff else None
        return {**asdict(self), "cutoff": self.cutoff.isoformat(), "sample_tier_cutoff": tier_cutoff,
                "rows_deleted": self.rows_deleted, "partitions_dropped": self.partitions_dropped}


def validate_retention_args(older_than_days: int, tables: Iterable[str] | None) -> list[str]:
    """Check the arguments an operator may give; returns the tables to purge, in a fixed order."""
    if not isinstance(older_than_days, int) or not 1 <= older_than_days <= RETENTION_DAYS:
        raise RetentionError(f"older-than must be a whole number of days from 1 to {RETENTION_DAYS} "
                             f"(telemetry is never kept longer than {RETENTION_DAYS} days), "
                             f"got {older_than_days!r}")
    if tables is None:
        return list(RETENTION_TABLES)
    wanted = set(tables)
    chunks = sorted(wanted & set(CHUNK_TABLES))
    if chunks:
        raise RetentionError(f"{chunks[0]} holds the packed rows of {CHUNK_TABLES[chunks[0]]}: "
                             f"purge {CHUNK_TABLES[chunks[0]]}, which covers both")
    unknown = sorted(wanted - set(RETENTION_TABLES))
    if unknown:
        raise RetentionError(f"unknown table {', '.join(unknown)}; valid tables: {', '.join(RETENTION_TABLES)}")
    return [table for table in RETENTION_TABLES if table in wanted]


def sampled_trace_cutoff(now: datetime) -> datetime | None:
    """Spans kept only because their trace was sampled are removed from the days wholly before this (a UTC
    day start: each day partition of trace chunks is rewritten once, not once an hour); None when they live
    as long as every other span."""
    days = settings.TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS
    if days >= RETENTION_DAYS:
        return None
    return (now - timedelta(days=days)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def enforce_retention(
    now: datetime | None = None,
    older_than_days: int = RETENTION_DAYS,
    tables: Iterable[str] | None = None,
    dry_run: bool = False,
    using: str = "default",
) -> RetentionReport:
    """Remove every row older than `older_than_days` before `now` from the given tables (default: all),
    and what the shorter tiers of the sample and trace tables no longer keep.

    A dry run only counts what would go and records nothing.
    """
    selected = validate_retention_args(older_than_days, tables)
    now = now or timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    samples_horizon = sample_tier_cutoff(now) if ROLLUP_SOURCE_TABLE in selected else None
    samples_tier = samples_horizon if samples_horizon is not None and samples_horizon > cutoff else None
    traces_horizon = sampled_trace_cutoff(now) if TRACE_TABLE in selected else None
    traces_tier = traces_horizon if traces_horizon is not None and traces_horizon > cutoff else None
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run, tables=[])
    started = time.perf_counter()
    if dry_run:
        report.tables = [_purge_table(table, cutoff, dry_run=True, using=using) for table in selected]
        if PENDING_TABLE in selected:
            report.tables.append(_expire_stream_states(now, dry_run=True, using=using))
        if samples_tier is not None:
            report.tiers.append(_purge_sample_tier(samples_tier, dry_run=True, using=using, after=cutoff))
        if traces_tier is not None:
            report.tiers.append(_purge_sampled_spans(traces_tier, dry_run=True, using=using, after=cutoff))
        report.duration_ms = _elapsed_ms(started)
        return report
    with job_run(Job.PURGE, using=using) as details:
        step = "rollups"
        try:
            for table in selected:
                step = table
                report.tables.append(_purge_table(table, cutoff, dry_run=False, using=using))
            if PENDING_TABLE in selected:
                step = streams.STREAMS_TABLE
                report.tables.append(_expire_stream_states(now, dry_run=False, using=using))
            if error_groups.HOURS_TABLE in selected or error_groups.DAYS_TABLE in selected:
                step = error_groups.HOURS_TABLE
                error_groups.refill_cutoff(cutoff, using=using)  # its minutes after the cutoff stay
            if span_aggregates.HOURS_TABLE in selected:
                step = span_aggregates.HOURS_TABLE
                span_aggregates.refill_cutoff_hour(cutoff, using=using)  # its minutes after the cutoff stay
            if minutes.MINUTES_TABLE in selected:
                step = minutes.KEYS_TABLE
                minutes.prune_keys(using=using)  # keys of bucket layouts no minute row uses any more
            if samples_tier is not None:
                step = f"{ROLLUP_SOURCE_TABLE} (sample tier)"
                report.tiers.append(_purge_sample_tier(samples_tier, dry_run=False, using=using))
                report.sample_tier_cutoff = samples_tier
            if traces_tier is not None:
                step = f"{TRACE_TABLE} (sampled spans)"
                report.tiers.append(_purge_sampled_spans(traces_tier, dry_run=False, using=using))
            if ROLLUP_SOURCE_TABLE in selected:
                step = "rollups"
                # Past the sample horizon the hour holding the cutoff cannot be recomputed from what is left.
                drop_hours_before(cutoff, using=using,
                                  partial_hour=samples_horizon is not None and cutoff < samples_horizon)
                refresh_rollups(using=using, now=now)
                report.rollups_refreshed = True
        except DatabaseError as error:
            details.update(report.as_dict())
            raise RetentionError(f"purge of {step} failed and was rolled back: "
                                 f"{str(error).strip().splitlines()[0]}") from error
        report.duration_ms = _elapsed_ms(started)
        details.update(report.as_dict())
    logger.info(
        "telemetry retention: cutoff %s, removed %d rows and %d partitions in %d ms (%s)",
        cutoff.isoformat(), report.rows_deleted, report.partitions_dropped, report.duration_ms,
        ", ".join(f"{t.table}{f' ({t.tier})' if t.tier else ''}: {t.rows_deleted} rows"
                  + (f" ({t.packed_rows_deleted} packed)" if t.packed_rows_deleted else "")
                  + f"/{len(t.partitions_dropped)} partitions"
                  for t in (*report.tables, *report.tiers)),
    )
    return report


def _purge_table(table: str, cutoff: datetime, dry_run: bool, using: str) -> TableReport:
    started = time.perf_counter()
    report = TableReport(table=table)
    column = RETENTION_TABLES[table]
    quote = connections[using].ops.quote_name
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if table in partitioned_tables():
            lock_partitions(cursor, table)
            expired = [p for p in day_partitions(table, using) if p.end <= cutoff]
            report.partitions_dropped = [partition.name for partition in expired]
        if dry_run:
            cursor.execute(f"SELECT count(*) FROM {quote(table)} WHERE {column} < %s", [cutoff])
            report.rows_deleted = cursor.fetchone()[0]
        else:
            for partition in report.partitions_dropped:
                # The packing job empties old partitions of a packed table by DELETE: the planner's
                # estimate may still count the rows it moved, and counting what is left is cheap.
                report.rows_deleted += (_exact_row_count(cursor, quote(partition)) if table in PACKED_TABLES
                                        else _row_count(cursor, quote(partition)))
                cursor.execute(f"DROP TABLE {quote(partition)}")
            # Whatever is left below the cutoff sits in the boundary or the default partition.
            cursor.execute(f"DELETE FROM {quote(table)} WHERE {column} < %s", [cutoff])
            report.rows_deleted += cursor.rowcount
        if table in PACKED_TABLES:
            dropped, report.packed_rows_deleted = _purge_chunks(cursor, PACKED_TABLES[table], cutoff, dry_run, using)
            report.partitions_dropped += dropped
            report.rows_deleted += report.packed_rows_deleted
    report.duration_ms = _elapsed_ms(started)
    return report


def _expire_stream_states(now: datetime, dry_run: bool, using: str) -> TableReport:
    started = time.perf_counter()
    report = TableReport(table=streams.STREAMS_TABLE, tier=f"streams idle for {_days(RETENTION_DAYS)}")
    report.rows_deleted = streams.expire_idle_states(now, dry_run=dry_run, using=using)
    report.duration_ms = _elapsed_ms(started)
    return report


def _purge_chunks(cursor, shape: PackedShape, cutoff: datetime, dry_run: bool, using: str) -> tuple[list[str], int]:
    """Remove every packed row older than `cutoff` and no younger one, inside the caller's transaction:
    day partitions of chunks wholly before it dropped, other chunks wholly before it deleted, and the
    chunks holding rows on both sides rewritten without their older rows. Returns the partitions dropped
    (would be dropped) and the rows removed (would be removed)."""
    table = shape.chunk_table
    quote = connections[using].ops.quote_name
    lock_partitions(cursor, table)
    # A chunk holds one hour, and hours do not cross days: a partition ending by the cutoff holds only older rows.
    expired = [partition.name for partition in day_partitions(table, using) if partition.end <= cutoff]
    wholly_older = "first_ts < %s AND last_ts < %s"
    straddling = "first_ts < %s AND last_ts >= %s"
    if dry_run:
        cursor.execute(f"SELECT coalesce(sum(row_count), 0) FROM {table} WHERE {wholly_older}", [cutoff, cutoff])
        rows = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {table} c CROSS JOIN LATERAL unnest(c.ts) AS u(ts)"
                       f" WHERE {straddling} AND {shape.unnested_ts} < %s", [cutoff, cutoff, cutoff])
        return expired, int(rows + cursor.fetchone()[0])
    rows = 0
    for partition in expired:
        cursor.execute(f"SELECT coalesce(sum(row_count), 0) FROM {quote(partition)}")
        rows += cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {quote(partition)}")
    cursor.execute(f"WITH gone AS (DELETE FROM {table} WHERE {wholly_older} RETURNING row_count)"
                   " SELECT coalesce(sum(row_count), 0) FROM gone", [cutoff, cutoff])
    rows += cursor.fetchone()[0]
    _, removed = repack_chunks(cursor, shape, straddling, [cutoff, cutoff], "ts >= %s", [cutoff])
    if shape is TRACES:
        forget_trace_hours(cursor, cutoff)
    return expired, int(rows + removed)


def _purge_sample_tier(horizon: datetime, dry_run: bool, using: str, after: datetime | None = None) -> TableReport:
    """Remove minute samples before `horizon` (an hour start) and leave the rollups of their hours as they are.

    In one transaction holding the partition and the rollup locks: hours marked changed but not yet
    recomputed are recomputed while their samples are all there (a sample that arrived late still counts),
    then the samples go, then the marks their DELETE left (recomputing those hours would empty them).
    A dry run counts only what is at or after `after` (the cap's cutoff, whose own pass counts the rest).
    Marked hours already past the previous run's horizon lost their samples then; only a late sample is left
    of them, so they are not recomputed: their late samples go without reaching the rollup. The horizon is
    recorded in the same transaction (a `SAMPLE_TIER_JOB` row of telemetry_job_runs), so a crash never leaves
    samples removed without the record that says so.
    """
    started = time.perf_counter()
    table = ROLLUP_SOURCE_TABLE
    days = settings.TELEMETRY_SAMPLE_RETENTION_DAYS
    report = TableReport(table=table, tier=f"minute samples older than {_days(days)}")
    quote = connections[using].ops.quote_name
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        lock_partitions(cursor, table)
        expired = [p for p in day_partitions(table, using)
                   if p.end <= horizon and (not dry_run or after is None or p.end > after)]
        report.partitions_dropped = [partition.name for partition in expired]
        if dry_run:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE ts < %s AND ts >= %s",
                           [horizon, after or _BEGINNING_OF_TIME])
            report.rows_deleted = cursor.fetchone()[0]
        else:
            lock_rollups(cursor)
            previous = _previous_sample_tier_cutoff(cursor)
            # Without a previous tier run every sample is still there.
            cursor.execute(f"SELECT hour FROM {DIRTY_HOURS_TABLE} WHERE hour < %s AND hour >= %s ORDER BY hour",
                           [horizon, previous or horizon - timedelta(days=RETENTION_DAYS + 1)])
            pending = [row[0] for row in cursor.fetchall()]
            if pending:
                recompute_hours(cursor, pending)
            pending += recompute_hours_without_rollup(cursor, before=horizon)
            for partition in report.partitions_dropped:
                report.rows_deleted += _row_count(cursor, quote(partition))
                cursor.execute(f"DROP TABLE {quote(partition)}")
            cursor.execute(f"DELETE FROM {table} WHERE ts < %s", [horizon])
            report.rows_deleted += cursor.rowcount
            cursor.execute(f"DELETE FROM {DIRTY_HOURS_TABLE} WHERE hour < %s", [horizon])
            report.duration_ms = _elapsed_ms(started)
            finished = timezone.now()
            JobRun.objects.using(using).create(
                job=SAMPLE_TIER_JOB, started_at=finished - timedelta(milliseconds=report.duration_ms),
                finished_at=finished, duration_ms=report.duration_ms, ok=True,
                details={"sample_tier_cutoff": horizon.isoformat(), "rows_deleted": report.rows_deleted,
                         "hours_folded": len(pending)},
            )
    report.duration_ms = _elapsed_ms(started)
    return report


def _previous_sample_tier_cutoff(cursor) -> datetime | None:
    cursor.execute("SELECT max((details ->> 'sample_tier_cutoff')::timestamptz)"
                   f" FROM {JobRun._meta.db_table} WHERE job = %s", [SAMPLE_TIER_JOB])
    return cursor.fetchone()[0]


def _purge_sampled_spans(horizon: datetime, dry_run: bool, using: str,
                         after: datetime | None = None) -> TableReport:
    """Remove the spans kept only because their trace was sampled from before `horizon` (a day start):
    the trace chunks holding some are rewritten without them, one transaction per day of chunks whose
    partition is rewritten whole to give the space back (a crash leaves each day rewritten or as it was; a
    rewritten chunk holds none, so it is never read again), then those still hot are deleted. A dry run
    counts only what is at or after `after`."""
    started = time.perf_counter()
    days = settings.TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS
    report = TableReport(table=TRACE_TABLE, tier=f"sampled-only spans older than {_days(days)}")
    sampled = KeptReason.SAMPLED.value
    chunks = TRACES.chunk_table
    holding_sampled = "first_ts >= %s AND first_ts < %s AND %s = ANY(kept_reason)"
    if dry_run:
        with connections[using].cursor() as cursor:
            lower = after or _BEGINNING_OF_TIME
            cursor.execute(f"SELECT count(*) FROM {chunks} c CROSS JOIN LATERAL unnest(c.ts, c.kept_reason) AS u(ts, k)"
                           f" WHERE {holding_sampled} AND u.k = %s AND u.ts < %s AND u.ts >= %s",
                           [_BEGINNING_OF_TIME, horizon, sampled, sampled, horizon, lower])
            report.packed_rows_deleted = cursor.fetchone()[0]
            cursor.execute(f"SELECT count(*) FROM {TRACE_TABLE} WHERE kept_reason = %s AND ts < %s AND ts >= %s",
                           [sampled, horizon, lower])
            report.rows_deleted = report.packed_rows_deleted + cursor.fetchone()[0]
        report.duration_ms = _elapsed_ms(started)
        return report
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT date_trunc('day', first_ts) FROM {chunks} WHERE {holding_sampled} ORDER BY 1",
                       [_BEGINNING_OF_TIME, horizon, sampled])
        due_days = [row[0] for row in cursor.fetchall()]
    for day in due_days:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            lock_partitions(cursor, chunks)
            partition = partition_name(chunks, day.date())
            day_params = [day, min(day + timedelta(days=1), horizon), sampled]
            keep, keep_params = "kept_reason IS DISTINCT FROM %s OR ts >= %s", [sampled, horizon]
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
            if cursor.fetchone()[0]:
                _, removed = compact_partition(cursor, TRACES, connections[using].ops.quote_name(partition),
                                               holding_sampled, day_params, keep, keep_params)
            else:  # a day without partition: its chunks sit in the default partition, repacked in place
                _, removed = repack_chunks(cursor, TRACES, holding_sampled, day_params, keep, keep_params)
            report.packed_rows_deleted += removed
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"DELETE FROM {TRACE_TABLE} WHERE kept_reason = %s AND ts < %s", [sampled, horizon])
        report.rows_deleted = report.packed_rows_deleted + cursor.rowcount
        span_aggregates.forget_sampled(horizon, sampled, using=using)
    report.duration_ms = _elapsed_ms(started)
    return report


def _row_count(cursor, table: str) -> int:
    """Rows of a whole partition about to be dropped: the planner's count when the table has been
    analysed (exact for a partition no longer written to), else counted. Counting a full day at
    `heavy` took most of the purge time."""
    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
    estimate = cursor.fetchone()[0]
    if estimate >= 0:
        return estimate
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0]


def _exact_row_count(cursor, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0]


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
