"""Daily range partitions of the time-partitioned tables.

Every partitioned table has one partition per UTC day, named `<table>_pYYYYMMDD`, and a
`<table>_default` partition that catches rows for days without their own partition, so an
insert never fails. Partition maintenance (creating here, dropping in retention) takes a
per-table transaction-scoped advisory lock, so concurrent callers queue instead of colliding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from telemetry import minutes
from telemetry.contract import RETENTION_DAYS
from telemetry.models import ConnectionMetric, ConnectionSession, LogEvent, MetricSample, TraceIndexEntry


@functools.cache
def partitioned_tables() -> Mapping[str, str]:
    """Partitioned table -> the timestamptz column it is partitioned by, each name taken from where the table is
    defined (its model, or the constant of the module that writes it)."""
    # Imported here, not at the top: packing and span_aggregates import this module.
    from telemetry import packing, span_aggregates

    return MappingProxyType({
        MetricSample._meta.db_table: "ts",
        LogEvent._meta.db_table: "ts",
        TraceIndexEntry._meta.db_table: "ts",
        ConnectionSession._meta.db_table: "started_at",
        ConnectionMetric._meta.db_table: "ts",
        minutes.MINUTES_TABLE: "ts",
        packing.LOG_CHUNKS: "first_ts",  # a chunk's first row time
        packing.TRACE_CHUNKS: "first_ts",
        **span_aggregates.TABLES,
    })


DEFAULT_DAYS_BACK = 31
DEFAULT_DAYS_AHEAD = 3
_LOCK_NAMESPACE = "telemetry.partitions"
_DAY_SUFFIX = re.compile(r"_p(\d{8})$")


@dataclass(frozen=True)
class DayPartition:
    parent: str
    name: str
    day: date

    @property
    def start(self) -> datetime:
        return day_start(self.day)

    @property
    def end(self) -> datetime:
        return day_start(self.day + timedelta(days=1))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def partition_name(parent: str, day: date) -> str:
    return f"{parent}_p{day:%Y%m%d}"


def default_partition_name(parent: str) -> str:
    return f"{parent}_default"


def check_table(parent: str) -> str:
    if parent not in partitioned_tables():
        raise ValueError(f"{parent!r} is not a partitioned telemetry table; "
                         f"valid: {', '.join(partitioned_tables())}")
    return parent


def lock_partitions(cursor, parent: str) -> None:
    """Serialise partition changes of one table until the current transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", [_LOCK_NAMESPACE, parent])


def day_partitions(parent: str, using: str = "default") -> list[DayPartition]:
    """The daily partitions attached to `parent`, oldest first (the default partition excluded)."""
    check_table(parent)
    with connections[using].cursor() as cursor:
        cursor.execute(
            """SELECT child.relname FROM pg_inherits
               JOIN pg_class child ON child.oid = pg_inherits.inhrelid
               WHERE pg_inherits.inhparent = to_regclass(%s)""",
            [parent],
        )
        names = [row[0] for row in cursor.fetchall()]
    partitions = []
    for name in names:
        match = _DAY_SUFFIX.search(name)
        if match and name == partition_name(parent, datetime.strptime(match[1], "%Y%m%d").date()):
            partitions.append(DayPartition(parent, name, datetime.strptime(match[1], "%Y%m%d").date()))
    return sorted(partitions, key=lambda partition: partition.day)


def ensure_partitions(
    now: datetime | None = None,
    days_back: int = DEFAULT_DAYS_BACK,
    days_ahead: int = DEFAULT_DAYS_AHEAD,
    using: str = "default",
    tables: Iterable[str] | None = None,
) -> list[str]:
    """Create the missing daily partitions from `days_back` days before `now` to `days_ahead` after.

    Idempotent and safe to run concurrently. Rows already caught by the default partition for a
    day that gets its own partition are moved into it. Returns the names of created partitions.
    """
    if days_back < 0 or days_ahead < 0:
        raise ValueError("days_back and days_ahead must not be negative")
    today = (now or timezone.now()).astimezone(UTC).date()
    days = [today + timedelta(days=offset) for offset in range(-days_back, days_ahead + 1)]
    created: list[str] = []
    for parent in tables if tables is not None else partitioned_tables():
        check_table(parent)
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [parent])
            if not cursor.fetchone()[0]:
                continue  # a migration older than the table's own asked (0001 runs this for every table)
            lock_partitions(cursor, parent)
            existing = {partition.day for partition in day_partitions(parent, using)}
            for day in days:
                if day not in existing:
                    _create_partition(cursor, connections[using].ops.quote_name, parent, day)
                    created.append(partition_name(parent, day))
    return created


def ensure_kept_partitions(
    now: datetime | None = None,
    days_back: int = DEFAULT_DAYS_BACK,
    days_ahead: int = DEFAULT_DAYS_AHEAD,
    using: str = "default",
) -> list[str]:
    """The partition policy, for the beat job and `manage.py ensure_partitions` alike: `ensure_partitions` of
    every table, but none for per-label minute samples older than their tier
    (`settings.TELEMETRY_SAMPLE_RETENTION_DAYS`), which retention would drop again within the hour (late
    samples for those days land in the default partition, which it empties)."""
    samples = MetricSample._meta.db_table
    sample_days = settings.TELEMETRY_SAMPLE_RETENTION_DAYS
    samples_back = min(days_back, sample_days) if sample_days < RETENTION_DAYS else days_back
    others = [table for table in partitioned_tables() if table != samples]
    return (ensure_partitions(now, days_back, days_ahead, using, tables=others)
            + ensure_partitions(now, samples_back, days_ahead, using, tables=[samples]))


def _create_partition(cursor, quote, parent: str, day: date) -> None:
    column = partitioned_tables()[parent]
    start, end = day_start(day), day_start(day + timedelta(days=1))
    bounds = f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    name, default = quote(partition_name(parent, day)), quote(default_partition_name(parent))
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {column} >= %s AND {column} < %s)",
                   [start, end])
    if not cursor.fetchone()[0]:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {quote(parent)} {bounds}")
        return
    # PostgreSQL refuses a new partition while the default partition holds rows of its range:
    # build the partition beside the parent, move those rows into it, then attach it.
    cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"CREATE TABLE {name} (LIKE {quote(parent)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                   " INCLUDING STORAGE INCLUDING COMPRESSION)")
    cursor.execute(
        f"""WITH moved AS (DELETE FROM {default} WHERE {column} >= %s AND {column} < %s RETURNING *)
            INSERT INTO {name} SELECT * FROM moved""",
        [start, end],
    )
    cursor.execute(f"ALTER TABLE {quote(parent)} ATTACH PARTITION {name} {bounds}")
