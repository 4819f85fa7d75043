"""The 30-day hard cap on every native telemetry table.

Whole daily partitions older than the cutoff are dropped (cheap); expired rows of the boundary
partition and of the default partition are deleted; then the rollups are refreshed so they
hold nothing older either. One transaction per table, under the same advisory lock as partition
creation, so two overlapping runs (or a run and `ensure_partitions`) queue instead of colliding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from telemetry.contract import RETENTION_DAYS
from telemetry.jobs import Job, job_run
from telemetry.partitions import PARTITIONED_TABLES, day_partitions, lock_partitions
from telemetry.rollups import drop_hours_before, refresh_rollups

logger = logging.getLogger(__name__)

# Unpartitioned tables under the same cap -> the column that dates a row.
UNPARTITIONED_TABLES: Mapping[str, str] = {
    "telemetry_series": "last_seen",
    "telemetry_job_runs": "started_at",
}
RETENTION_TABLES: Mapping[str, str] = {**PARTITIONED_TABLES, **UNPARTITIONED_TABLES}
ROLLUP_SOURCE_TABLE = "telemetry_metric_samples"


class RetentionError(Exception):
    """Bad arguments or a failed purge; the message is one line meant for an operator."""


@dataclass
class TableReport:
    table: str
    partitions_dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0  # all rows removed, including those of dropped partitions
    duration_ms: int = 0


@dataclass
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    tables: list[TableReport]
    rollups_refreshed: bool = False
    duration_ms: int = 0

    @property
    def rows_deleted(self) -> int:
        return sum(report.rows_deleted for report in self.tables)

    @property
    def partitions_dropped(self) -> int:
        return sum(len(report.partitions_dropped) for report in self.tables)

    def as_dict(self) -> dict:
        return {**asdict(self), "cutoff": self.cutoff.isoformat(), "rows_deleted": self.rows_deleted,
                "partitions_dropped": self.partitions_dropped}


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


def enforce_retention(
    now: datetime | None = None,
    older_than_days: int = RETENTION_DAYS,
    tables: Iterable[str] | None = None,
    dry_run: bool = False,
    using: str = "default",
) -> RetentionReport:
    """Remove every row older than `older_than_days` before `now` from the given tables (default: all).

    A dry run only counts what would go and records nothing.
    """
    selected = validate_retention_args(older_than_days, tables)
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run, tables=[])
    started = time.perf_counter()
    if dry_run:
        report.tables = [_purge_table(table, cutoff, dry_run=True, using=using) for table in selected]
        report.duration_ms = _elapsed_ms(started)
        return report
    with job_run(Job.PURGE, using=using) as details:
        try:
            for table in selected:
                report.tables.append(_purge_table(table, cutoff, dry_run=False, using=using))
            if ROLLUP_SOURCE_TABLE in selected:
                drop_hours_before(cutoff, using=using)
                refresh_rollups(using=using)
                report.rollups_refreshed = True
        except DatabaseError as error:
            details.update(report.as_dict())
            failed = selected[len(report.tables)] if len(report.tables) < len(selected) else "rollups"
            raise RetentionError(f"purge of {failed} failed and was rolled back: "
                                 f"{str(error).strip().splitlines()[0]}") from error
        report.duration_ms = _elapsed_ms(started)
        details.update(report.as_dict())
    logger.info(
        "telemetry retention: cutoff %s, removed %d rows and %d partitions in %d ms (%s)",
        cutoff.isoformat(), report.rows_deleted, report.partitions_dropped, report.duration_ms,
        ", ".join(f"{t.table}: {t.rows_deleted} rows/{len(t.partitions_dropped)} partitions"
                  for t in report.tables),
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
