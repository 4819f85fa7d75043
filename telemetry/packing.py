"""Packing: a closed day's log records and spans moved from rows into compressed per-hour arrays.

A chunk (migration 0007) holds the rows of one hour and one segment — (level, service, domain) for logs,
(service, domain) for spans — one array per column, all in (ts, id) order. PostgreSQL compresses arrays
of that size on its own (TOAST), so a packed log record costs ~50 bytes instead of ~350 as a row.
Readers see hot and packed rows alike through the `*_all` views.

Every function here runs inside the caller's transaction: packing a day either happens wholly or not
at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

LOG_TABLE = "telemetry_log_events"
TRACE_TABLE = "telemetry_trace_index"
LOG_CHUNKS = "telemetry_log_chunks"
TRACE_CHUNKS = "telemetry_trace_chunks"
LOG_VIEW = "telemetry_log_events_all"
TRACE_VIEW = "telemetry_trace_index_all"
# A chunk never spans more than this: readers widen a window's lower bound by it to find the chunks
# that overlap the window by their `first_ts` (the chunk tables' partition key).
CHUNK_SPAN = timedelta(hours=1)


@dataclass(frozen=True)
class PackedShape:
    """How one hot table's rows become chunks: the segment columns (one value per chunk) and, for every
    other column, the SQL that turns a hot row's value into the array element (and back, in the view)."""

    hot_table: str
    chunk_table: str
    segment: tuple[str, ...]
    elements: tuple[tuple[str, str], ...]  # (chunk array column, element expression over the hot row)


LOGS = PackedShape(
    hot_table=LOG_TABLE,
    chunk_table=LOG_CHUNKS,
    segment=("level", "service", "domain"),
    elements=(
        ("trace_ids", "trace_id::uuid"),
        ("ts", "ts"),
        ("id", "id"),
        ("event", "event"),
        ("message", "message"),
        ("span_ids", "('x' || span_id)::bit(64)::bigint"),
        ("attrs", "attrs"),
    ),
)

TRACES = PackedShape(
    hot_table=TRACE_TABLE,
    chunk_table=TRACE_CHUNKS,
    segment=("service", "domain"),
    elements=(
        ("trace_ids", "trace_id::uuid"),
        ("ts", "ts"),
        ("id", "id"),
        ("duration_ms", "duration_ms"),
        ("span_name", "span_name"),
        ("route", "route"),
        ("status_code", "status_code"),
        ("kept_reason", "kept_reason"),
    ),
)

def _pack_select(shape: PackedShape, source: str, where: str) -> str:
    """INSERT of the chunks built from the hot-shaped rows of `source` matching `where`."""
    columns = ("first_ts", "last_ts", *shape.segment, "row_count", *(name for name, _ in shape.elements))
    arrays = ", ".join(f"array_agg({expression} ORDER BY ts, id)" for _, expression in shape.elements)
    segment = ", ".join(shape.segment)
    return (
        f"INSERT INTO {shape.chunk_table} ({', '.join(columns)}) "
        f"SELECT min(ts), max(ts), {segment}, count(*), {arrays} "
        f"FROM {source} WHERE {where} "
        f"GROUP BY date_trunc('hour', ts), {segment}"
    )


def pack_range(cursor, shape: PackedShape, start: datetime, end: datetime) -> int:
    """Move the hot rows with `start <= ts < end` into chunks; returns the rows moved.

    One statement deletes the rows and packs exactly the rows it deleted, so it needs no lock: a row
    written meanwhile is not seen, stays hot and is packed by a later run (into further chunks).
    """
    cursor.execute(
        f"WITH moved AS (DELETE FROM {shape.hot_table} WHERE ts >= %s AND ts < %s RETURNING *), "
        f"packed AS ({_pack_select(shape, 'moved', 'TRUE')} RETURNING row_count) "
        "SELECT coalesce(sum(row_count), 0) FROM packed",
        [start, end],
    )
    return int(cursor.fetchone()[0])


def repack_chunks(cursor, shape: PackedShape, chunk_filter: str, filter_params: list, keep: str,
                  keep_params: list) -> tuple[int, int]:
    """Rewrite the chunks matching `chunk_filter` (SQL over the chunk table's columns) with only their rows
    matching `keep` (SQL over the hot table's columns, e.g. `ts >= %s`). Returns (rows kept, rows removed).
    Drops the sampled-only spans of old days, and the rows of a chunk older than the retention cutoff."""
    cursor.execute(
        "CREATE TEMPORARY TABLE repack_rows ON COMMIT DROP AS "
        + unpacked_select(shape, f"(SELECT * FROM {shape.chunk_table} WHERE {chunk_filter})"),
        filter_params,
    )
    cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE {keep}) FROM repack_rows", keep_params)
    before, kept = cursor.fetchone()
    if before:
        cursor.execute(f"DELETE FROM {shape.chunk_table} WHERE {chunk_filter}", filter_params)
        cursor.execute(_pack_select(shape, "repack_rows", keep), keep_params)
    cursor.execute("DROP TABLE repack_rows")
    return int(kept), int(before - kept)


def unpacked_select(shape: PackedShape, chunks: str) -> str:
    """The hot-shaped rows of the chunks in `chunks` (a relation or a parenthesised subquery), as the
    views unpack them."""
    names = [name for name, _ in shape.elements]
    columns = []
    for name in names:
        if name == "trace_ids":
            columns.append(f"replace(u.{name}::text, '-', '') AS trace_id")
        elif name == "span_ids":
            columns.append(f"lpad(to_hex(u.{name}), 16, '0') AS span_id")
        else:
            columns.append(f"u.{name} AS {name}")
    segment = ", ".join(f"c.{name}" for name in shape.segment)
    return (f"SELECT {segment}, {', '.join(columns)} FROM {chunks} c "
            f"CROSS JOIN LATERAL unnest({', '.join(f'c.{name}' for name in names)}) AS u({', '.join(names)})")
