"""Packing as migration 0007 laid chunks out (one array per hot column, ids whole), frozen here: the upgrade tests
pack rows at an older migration, where today's telemetry.packing writes columns that do not exist yet."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

LOGS = ("telemetry_log_events", "telemetry_log_chunks", ("level", "service", "domain"), (
    ("trace_ids", "trace_id::uuid"), ("ts", "ts"), ("id", "id"), ("event", "event"), ("message", "message"),
    ("span_ids", "('x' || span_id)::bit(64)::bigint"), ("attrs", "attrs")))
TRACES = ("telemetry_trace_index", "telemetry_trace_chunks", ("service", "domain"), (
    ("trace_ids", "trace_id::uuid"), ("ts", "ts"), ("id", "id"), ("duration_ms", "duration_ms"),
    ("span_name", "span_name"), ("route", "route"), ("status_code", "status_code"), ("kept_reason", "kept_reason")))


def pack(start: datetime, end: datetime, shapes: tuple = (LOGS, TRACES)) -> None:
    """Move the hot rows of `shapes` (log records and spans) with start <= ts < end into 0007-layout chunks (from
    migration 0016 on, log chunks have another layout)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for hot, chunks, segment, elements in shapes:
            names = ", ".join(name for name, _ in elements)
            arrays = ", ".join(f"array_agg({expression} ORDER BY ts, id)" for _, expression in elements)
            cursor.execute(
                f"WITH moved AS (DELETE FROM {hot} WHERE ts >= %s AND ts < %s RETURNING *) "
                f"INSERT INTO {chunks} (first_ts, last_ts, {', '.join(segment)}, row_count, {names}) "
                f"SELECT min(ts), max(ts), {', '.join(segment)}, count(*), {arrays} FROM moved "
                f"GROUP BY date_trunc('hour', ts), {', '.join(segment)}",
                [start, end],
            )
