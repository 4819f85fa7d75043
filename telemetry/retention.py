"""The 30-day hard cap on every native telemetry table, and the shorter tiers inside it.

Whole daily partitions older than the cutoff are dropped (cheap); expired rows of the boundary
partition and of the default partition are deleted; then the rollups are refreshed so they
hold nothing older either. One transaction per table, under the same advisory lock as partition
creation, so two overlapping runs (or a run and `ensure_partitions`) queue instead of colliding.

Two tiers keep some rows for less than the cap:
- per-label minute samples live `TELEMETRY_SAMPLE_RETENTION_DAYS` (whole hours); the hourly rollup and
  the daily view built from them keep their 30 days. Removing the samples must not wipe the rollup:
  the triggers of migration 0003 mark every hour a DELETE touches for recomputation, so the tier folds
  still-pending hours into the rollup first, then removes the samples and their marks in one transaction.
- spans kept only because their trace was sampled (`kept_reason` 'p') live
  `TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS`. Deleted rows of an old partition would never be reused, so a
  day partition is compacted once, when the whole day is past that horizon: it is rewritten without
  those rows and swapped in, in one transaction (a crash leaves the old partition attached).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from telemetry.contract import RETENTION_DAYS
from telemetry.ingest.traces import KeptReason
from telemetry.jobs import Job, job_run
from telemetry.models import JobRun
from telemetry.partitions import PARTITIONED_TABLES, day_partitions, default_partition_name, lock_partitions
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
UNPARTITIONED_TABLES: Mapping[str, str] = {
    "telemetry_series": "last_seen",
    "telemetry_job_runs": "started_at",
    "telemetry_metric_points_pending": "minute",
    "telemetry_service_instances": "last_seen",
}
RETENTION_TABLES: Mapping[str, str] = {**PARTITIONED_TABLES, **UNPARTITIONED_TABLES}
ROLLUP_SOURCE_TABLE = "telemetry_metric_samples"
TRACE_TABLE = "telemetry_trace_index"
COMPACTED_COMMENT = "sampled-only spans removed"
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
    partitions_compacted: list[str] = field(default_factory=list)


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
    unknown = sorted(wanted - set(RETENTION_TABLES))
    if unknown:
        raise RetentionError(f"unknown table {', '.join(unknown)}; valid tables: {', '.join(RETENTION_TABLES)}")
    return [table for table in RETENTION_TABLES if table in wanted]


def sampled_trace_cutoff(now: datetime) -> datetime | None:
    """Spans kept only because their trace was sampled are removed from days wholly before this;
    None when they live as long as every other span."""
    days = settings.TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS
    return now - timedelta(days=days) if days < RETENTION_DAYS else None


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
        if samples_tier is not None:
            report.tiers.append(_purge_sample_tier(samples_tier, dry_run=True, using=using, after=cutoff))
        if traces_tier is not None:
            report.tiers.append(_compact_sampled_traces(traces_tier, dry_run=True, using=using, after=cutoff))
        report.duration_ms = _elapsed_ms(started)
        return report
    with job_run(Job.PURGE, using=using) as details:
        step = "rollups"
        try:
            for table in selected:
                step = table
                report.tables.append(_purge_table(table, cutoff, dry_run=False, using=using))
            if samples_tier is not None:
                step = f"{ROLLUP_SOURCE_TABLE} (sample tier)"
                report.tiers.append(_purge_sample_tier(samples_tier, dry_run=False, using=using))
                report.sample_tier_cutoff = samples_tier
            if traces_tier is not None:
                step = f"{TRACE_TABLE} (sampled spans)"
                report.tiers.append(_compact_sampled_traces(traces_tier, dry_run=False, using=using))
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
        ", ".join(f"{t.table}{f' ({t.tier})' if t.tier else ''}: {t.rows_deleted} rows/"
                  f"{len(t.partitions_dropped)} partitions"
                  + (f"/{len(t.partitions_compacted)} compacted" if t.partitions_compacted else "")
                  for t in (*report.tables, *report.tiers)),
    )
    return report


def _purge_table(table: str, cutoff: datetime, dry_run: bool, using: str) -> TableReport:
    started = time.perf_counter()
    report = TableReport(table=table)
    column = RETENTION_TABLES[table]
    quote = connections[using].ops.quote_name
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if table in PARTITIONED_TABLES:
            lock_partitions(cursor, table)
            expired = [p for p in day_partitions(table, using) if p.end <= cutoff]
            report.partitions_dropped = [partition.name for partition in expired]
        if dry_run:
            cursor.execute(f"SELECT count(*) FROM {quote(table)} WHERE {column} < %s", [cutoff])
            report.rows_deleted = cursor.fetchone()[0]
        else:
            for partition in report.partitions_dropped:
                report.rows_deleted += _row_count(cursor, quote(partition))
                cursor.execute(f"DROP TABLE {quote(partition)}")
            # Whatever is left below the cutoff sits in the boundary or the default partition.
            cursor.execute(f"DELETE FROM {quote(table)} WHERE {column} < %s", [cutoff])
            report.rows_deleted += cursor.rowcount
    report.duration_ms = _elapsed_ms(started)
    return report


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
    report = TableReport(table=table, tier=f"minute samples older than {days} days")
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
    cursor.execute("SELECT max((details ->> 'sample_tier_cutoff')::timestamptz) FROM telemetry_job_runs"
                   " WHERE job = %s", [SAMPLE_TIER_JOB])
    return cursor.fetchone()[0]


def _compact_sampled_traces(horizon: datetime, dry_run: bool, using: str,
                            after: datetime | None = None) -> TableReport:
    """Rewrite each day partition of the trace index wholly before `horizon`, once, without its sampled-only
    spans; delete such spans from the default partition. A dry run counts only what is at or after `after`."""
    started = time.perf_counter()
    table = TRACE_TABLE
    days = settings.TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS
    report = TableReport(table=table, tier=f"sampled-only spans older than {days} days")
    quote = connections[using].ops.quote_name
    if dry_run:
        with connections[using].cursor() as cursor:
            due = [p for p in day_partitions(table, using) if p.end <= horizon and (after is None or p.end > after)
                   and not _is_compacted(cursor, p.name)]
            report.partitions_compacted = [partition.name for partition in due]
            cursor.execute(f"SELECT count(*) FROM {table} WHERE kept_reason = %s AND ts < %s AND ts >= %s",
                           [KeptReason.SAMPLED.value, horizon, after or _BEGINNING_OF_TIME])
            report.rows_deleted = cursor.fetchone()[0]
        report.duration_ms = _elapsed_ms(started)
        return report
    with connections[using].cursor() as cursor:
        candidates = [p for p in day_partitions(table, using) if p.end <= horizon]
        due = [partition for partition in candidates if not _is_compacted(cursor, partition.name)]
    for partition in due:
        # One transaction per day: a crash or a kill leaves each day either compacted or as it was.
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            lock_partitions(cursor, table)
            if _attached(cursor, partition.name) and not _is_compacted(cursor, partition.name):
                report.rows_deleted += _compact_partition(cursor, quote, partition)
                report.partitions_compacted.append(partition.name)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        lock_partitions(cursor, table)
        cursor.execute(f"DELETE FROM {quote(default_partition_name(table))} WHERE kept_reason = %s AND ts < %s",
                       [KeptReason.SAMPLED.value, horizon])
        report.rows_deleted += cursor.rowcount
    report.duration_ms = _elapsed_ms(started)
    return report


def _compact_partition(cursor, quote, partition) -> int:
    """Swap `partition` for a copy without its sampled-only spans; returns the rows left out.

    The copy gets its indexes and a CHECK of its range before the swap, so attaching it neither builds an
    index nor scans it; the parent is locked exclusively only from the DROP to the commit. Writers of the
    day wait on the SHARE lock (ingest accepts spans up to 30 days old) and get an error after the swap.
    """
    old, new = quote(partition.name), quote(f"{partition.name}_compact")
    parent = quote(TRACE_TABLE)
    cursor.execute(f"LOCK TABLE {old} IN SHARE MODE")
    before = _row_count(cursor, old)
    cursor.execute(f"CREATE TABLE {new} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(f"INSERT INTO {new} SELECT * FROM {old} WHERE kept_reason IS DISTINCT FROM %s ORDER BY ts",
                   [KeptReason.SAMPLED.value])
    kept = cursor.rowcount
    for statement in _index_statements(cursor, parent, new):
        cursor.execute(statement)
    cursor.execute(f"ALTER TABLE {new} ADD CONSTRAINT {quote(partition.name + '_range')}"
                   f" CHECK (ts >= %s AND ts < %s)", [partition.start, partition.end])
    cursor.execute(f"DROP TABLE {old}")
    cursor.execute(f"ALTER TABLE {new} RENAME TO {old}")
    cursor.execute(f"ALTER TABLE {parent} ATTACH PARTITION {old} FOR VALUES FROM (%s) TO (%s)",
                   [partition.start, partition.end])
    cursor.execute(f"ALTER TABLE {old} DROP CONSTRAINT {quote(partition.name + '_range')}")
    cursor.execute(f"COMMENT ON TABLE {old} IS %s", [COMPACTED_COMMENT])
    return max(before - kept, 0)


def _index_statements(cursor, parent: str, target: str) -> list[str]:
    """The parent's primary key and indexes, as statements creating their equivalents on `target`."""
    cursor.execute(
        """SELECT pg_get_indexdef(i.indexrelid), pg_get_constraintdef(c.oid)
           FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
           WHERE i.indrelid = %s::regclass ORDER BY i.indexrelid""",
        [parent],
    )
    statements = []
    for index_definition, constraint_definition in cursor.fetchall():
        if constraint_definition:
            statements.append(f"ALTER TABLE {target} ADD {constraint_definition}")
        else:
            statements.append(_ON_PARENT.sub(rf"CREATE \1INDEX ON {target} ", index_definition, count=1))
    return statements


_ON_PARENT = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ ")


def _is_compacted(cursor, partition: str) -> bool:
    cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [partition])
    return cursor.fetchone()[0] == COMPACTED_COMMENT


def _attached(cursor, partition: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
    return cursor.fetchone()[0]


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


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
