"""Span aggregates: the kept spans counted per minute and per hour, so span breakdowns never unpack spans.

Two tables (migration 0012), one row per (UTC minute | UTC hour, service, domain, route, kept reason) with
`spans`, `errors` (telemetry.span_errors) and `buckets`: span durations counted on the live windows' latency
bounds (`BOUNDS_MS` = telemetry.live_windows.LATENCY_BOUNDS_MS, bucket i is (bound[i-1], bound[i]] ms, the last
one +Inf), so percentiles come from buckets with the same math as everywhere else (telemetry.histograms).
Readers (`telemetry.queries.span_breakdowns`) take whole hours from the hourly table and the edges of a window
from the minute table: a 24-hour breakdown reads ~25 hourly rows per key instead of unpacking a day of chunks.

**How they are counted, and why so.** A statement trigger on `telemetry_trace_index` adds the rows every INSERT
actually stored, in the inserting transaction (ON CONFLICT ... DO UPDATE, keys in a fixed order so two writers
never deadlock). The alternative the issue suggests, flushing the Redis live windows per minute from a beat task,
loses or doubles counts: windows are by arrival time, a flush that dies between reading Redis and committing
either drops a minute or (retried) counts it twice, and a request whose 200 was lost is re-sent and counted
again. Counting the stored rows instead:
- is exact under concurrency: two web processes add to the same row under its row lock; a re-sent span is
  skipped by the index's ON CONFLICT DO NOTHING (or as already packed), so it is not in the trigger's
  transition table and adds nothing;
- survives any restart: the counts commit with the spans or not at all, and no worker holds state;
- counts what the breakdowns describe: the spans the trace list shows (entry and db spans kept as errors,
  slow, or of a sampled trace), so a breakdown and the list agree. Request rates of *all* requests come from
  the metrics (top-routes) and the live windows, not from here.
Every writer of the index is covered (ingest, `storage.insert_trace_rows`, seeds, benches). Packing moves rows
out of the index by DELETE and is not counted again; TRUNCATE of the whole index clears both tables.

Retention: both tables are partitioned by day (telemetry.partitions) and purged with the other tables
(`purge_telemetry`); the hour holding the cutoff is then rebuilt from its remaining minutes
(`refill_cutoff_hour`), so the hourly tier loses nothing younger than the cutoff. The sampled-trace tier drops
the counts of spans kept only because their trace was sampled together with the spans (`forget_sampled`).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connections, transaction

from telemetry.live_windows import LATENCY_BOUNDS_MS
from telemetry.packing import TRACE_VIEW
from telemetry.queries.stored import window_sql

MINUTES_TABLE = "telemetry_span_minutes"
HOURS_TABLE = "telemetry_span_hours"
TABLES = {MINUTES_TABLE: "ts", HOURS_TABLE: "hour"}  # table -> its time column (the partition key)
BOUNDS_MS: tuple[float, ...] = LATENCY_BOUNDS_MS
NO_ROUTE = ""  # the route column of spans without one
NO_REASON = "-"  # the kept_reason column of rows stored without a reason
_ADD_FUNCTION = "telemetry_span_aggregates_add_from"  # counts the spans of a table (migration 0012)
_REBUILD_TABLE = "telemetry_span_rebuild"


def refill_cutoff_hour(cutoff: datetime, using: str = "default") -> int:
    """Rebuild the hourly rows of the hour holding `cutoff` from its minutes at or after it (retention has
    just dropped that hour's rows with everything before the cutoff). Returns the rows written."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {HOURS_TABLE} AS t
                SELECT date_trunc('hour', ts, 'UTC'), service, domain, route, kept_reason, sum(spans)::integer,
                       sum(errors)::integer, telemetry_bucket_sum(buckets::bigint[])::integer[]
                FROM {MINUTES_TABLE}
                WHERE ts >= %s AND ts < date_trunc('hour', %s::timestamptz, 'UTC') + interval '1 hour'
                GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
                ON CONFLICT (hour, service, domain, route, kept_reason) DO UPDATE
                SET spans = excluded.spans, errors = excluded.errors, buckets = excluded.buckets""",
            [cutoff, cutoff],
        )
        return cursor.rowcount


def forget_sampled(horizon: datetime, sampled_reason: str, using: str = "default") -> int:
    """Drop the counts of spans kept only because their trace was sampled, before `horizon` (an hour start,
    as the sampled-trace tier removes those spans by whole days). Returns the rows removed."""
    removed = 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for table, column in TABLES.items():
            cursor.execute(f"DELETE FROM {table} WHERE kept_reason = %s AND {column} < %s", [sampled_reason, horizon])
            removed += cursor.rowcount
    return removed


def rebuild(start: datetime, end: datetime, using: str = "default") -> None:
    """Recount [start, end) (whole hours) from the stored spans, hot and packed: after a bulk load that
    bypassed the index (e.g. chunks written directly), or to check the running counts."""
    if start.minute or start.second or start.microsecond or end.minute or end.second or end.microsecond:
        raise ValueError("rebuild takes whole hours")
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for table, column in TABLES.items():
            cursor.execute(f"DELETE FROM {table} WHERE {column} >= %s AND {column} < %s", [start, end])
        # Only the chunks that overlap the window are unpacked.
        in_window, params = window_sql(start, end)
        cursor.execute(f"DROP TABLE IF EXISTS {_REBUILD_TABLE}")
        cursor.execute(f"""CREATE TEMPORARY TABLE {_REBUILD_TABLE} ON COMMIT DROP AS
                           SELECT ts, service, domain, route, kept_reason, duration_ms, status_code
                           FROM {TRACE_VIEW} WHERE {in_window}""", params)
        cursor.execute(f"SELECT {_ADD_FUNCTION}(%s)", [_REBUILD_TABLE])
