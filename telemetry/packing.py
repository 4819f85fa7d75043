"""Packing: a closed day's log records and spans moved from rows into compressed per-hour arrays.

A chunk (migration 0007) holds the rows of one hour and one segment — (level, service, domain) for logs,
(service, domain) for spans — one array per column, all in (ts, id) order. PostgreSQL compresses arrays
of that size on its own (TOAST), so a packed log record costs ~50 bytes instead of ~350 as a row.
Readers see hot and packed rows alike through the `*_all` views.

The statements (`pack_range`, `repack_chunks`) run inside the caller's transaction, each one wholly or
not at all. `pack_due` is the periodic job: every whole hour that ended `TELEMETRY_PACK_AFTER_MINUTES` ago
is packed, each hour in its own transaction, so a killed run loses nothing and the next one carries on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from telemetry.jobs import Job, job_run
from telemetry.models import LogEvent, StoredLogEvent, StoredTraceEntry, TraceIndexEntry
from telemetry.partitions import day_partitions, default_partition_name, lock_partitions

logger = logging.getLogger(__name__)

LOG_TABLE = LogEvent._meta.db_table
TRACE_TABLE = TraceIndexEntry._meta.db_table
LOG_CHUNKS = "telemetry_log_chunks"
TRACE_CHUNKS = "telemetry_trace_chunks"
# The hourly filter of the trace ids in the trace and log chunks (migrations 0017 and 0021,
# telemetry.queries.stored.chunks_of_trace).
TRACE_HOURS = "telemetry_trace_hours"
# Set for a transaction, the chunk tables' insert triggers leave the hourly filter to the caller (migration 0024).
TRACE_HOURS_DEFERRED = "telemetry.trace_hours_deferred"
LOG_VIEW = StoredLogEvent._meta.db_table
TRACE_VIEW = StoredTraceEntry._meta.db_table
# A chunk never spans more than this: readers widen a window's lower bound by it to find the chunks
# that overlap the window by their `first_ts` (the chunk tables' partition key).
CHUNK_SPAN = timedelta(hours=1)
# A hot partition emptied by packing keeps its pages (and its index pages, which VACUUM never gives back)
# until it is truncated; below this it is as good as empty (an empty partition with its indexes is ~64 kB).
EMPTIED_PARTITION_MIN_BYTES = 1024 * 1024
# Between the values of a `joined` element: a control character, which ingest strips from free text
# (contract.remove_invisible); a row holding it is not packable and stays hot.
JOIN_SEPARATOR = "\x1e"


@dataclass(frozen=True)
class PackedShape:
    """How one hot table's rows become chunks: the segment columns (one value per chunk) and, for every
    other column, the SQL that turns a hot row's value into the array element (and back, in the view)."""

    hot_table: str
    chunk_table: str
    segment: tuple[str, ...]
    elements: tuple[tuple[str, str], ...]  # (chunk array column, element expression over the hot row)
    # (chunk array column, element expression, condition over a hot row): an array stored only when some row of
    # the chunk meets the condition (NULL otherwise, which unnests as NULL elements).
    optional: tuple[tuple[str, str, str], ...] = ()
    # (hot column, SQL over the unnested elements `u`) for every column that is not an element of the same name;
    # empty: the elements are the hot columns, but for trace_ids and span_ids (see unpacked_select).
    unpacked: tuple[tuple[str, str], ...] = ()
    # SQL: the chunk `c` holds the hot-shaped row `{row}` (its ts and id); `c` covers the row's time.
    holds: str = "c.id @> ARRAY[{row}.id]"
    # Elements stored as one text, JOIN_SEPARATOR between the rows' values (string_agg; split back on unpacking).
    joined: tuple[str, ...] = ()
    # The rows' order inside a chunk (SQL over the hot columns).
    order: str = "ts, id"
    # SQL over the hot columns whose values together tell a stored row from any other (pack_range drops a row
    # whose key a chunk of its hour already holds: a re-sent record); none may be NULL.
    key: tuple[str, ...] = ("ts", "id")
    # SQL over the hot columns: the rows packing may move (the others stay hot; empty: all).
    packable: str = ""
    # At most this many rows a chunk (in `order`, the hour's rows of a segment are cut into parts); None: no limit.
    max_rows: int | None = None

    @property
    def unnested_ts(self) -> str:
        """SQL: the time of the row whose `ts` element of chunk `c` is unnested as `u.ts`."""
        return dict(self.unpacked).get("ts", "u.ts")


# A log chunk (migration 0016) holds one UTC hour of one level. A row's time is its offset from the hour in
# microseconds (shifted into integer's range: 4 bytes, not 8); events and messages are each one text (what the
# search indexes read as stored); the hot row's random id is not kept: a packed row is known by its content
# (`LOG_KEY`), and readers get a content id (telemetry_log_row_id) that a row keeps when it is packed.
_LOG_TS_OFFSET = "telemetry_log_ts_offset(ts)"
LOG_CHUNK_MAX_ROWS = 3000
LOG_KEY = ("ts", "level", "service", "domain", "event", "message", "coalesce(trace_id, '')",
           "coalesce(span_id, '')", "attrs")
LOGS = PackedShape(
    hot_table=LOG_TABLE,
    chunk_table=LOG_CHUNKS,
    segment=("level",),
    elements=(
        ("trace_ids", "trace_id::uuid"),
        ("ts", _LOG_TS_OFFSET),
        ("services", "service"),
        ("domains", "domain"),
        ("events", "event"),
        ("messages", "message"),
        ("span_ids", "('x' || span_id)::bit(64)::bigint"),
        ("attrs", "attrs"),
    ),
    unpacked=(
        ("ts", "telemetry_log_ts(c.first_ts, u.ts)"),
        ("service", "u.services"),
        ("domain", "u.domains"),
        ("event", "u.events"),
        ("message", "u.messages"),
        ("trace_id", "replace(u.trace_ids::text, '-', '')"),
        ("span_id", "lpad(to_hex(u.span_ids), 16, '0')"),
        ("attrs", "u.attrs"),
    ),
    holds=("EXISTS (SELECT FROM unnest(c.ts, c.services, c.domains, telemetry_split_joined(c.events, c.row_count),"
           " telemetry_split_joined(c.messages, c.row_count), c.trace_ids, c.span_ids, c.attrs)"
           " AS u(ts, service, domain, event, message, trace_id, span_id, attrs)"
           " WHERE u.ts = telemetry_log_ts_offset({row}.ts) AND c.level = {row}.level AND u.service = {row}.service"
           " AND u.domain = {row}.domain AND u.event = {row}.event AND u.message = {row}.message"
           " AND u.trace_id IS NOT DISTINCT FROM {row}.trace_id::uuid"
           " AND u.span_id IS NOT DISTINCT FROM ('x' || {row}.span_id)::bit(64)::bigint AND u.attrs = {row}.attrs)"),
    joined=("events", "messages"),
    # Alike rows side by side: a chunk's texts compress better.
    order="service, domain, event, ts, message",
    # A search unpacks every row of a chunk that may hold its term (2-5 us a row); smaller chunks cost bytes (7 days
    # at heavy, docs/benchmarks.md: 2,000 rows 29.0 bytes a record, 3,000 27.5, 5,000 26.8, no cap 26.4).
    max_rows=LOG_CHUNK_MAX_ROWS,
    key=LOG_KEY,
    packable=f"strpos(event, E'{JOIN_SEPARATOR}') = 0 AND strpos(message, E'{JOIN_SEPARATOR}') = 0",
)

# A span's id derives from its trace id and the last 4 bytes of its span id (telemetry.storage.span_row_id,
# migration 0017), so a chunk stores those 4 bytes, not the 16 of the id; an id that does not derive so (written
# by hand) makes its chunk keep every id in `ids`.
_SPAN_BITS = "telemetry_span_id_bits({id})"
_DERIVED_ID = "telemetry_span_row_id({trace}, {span})"
TRACES = PackedShape(
    hot_table=TRACE_TABLE,
    chunk_table=TRACE_CHUNKS,
    segment=("service", "domain"),
    elements=(
        ("trace_ids", "trace_id::uuid"),
        ("ts", "ts"),
        ("span_ids", _SPAN_BITS.format(id="id")),
        ("duration_ms", "duration_ms"),
        ("span_name", "span_name"),
        ("route", "route"),
        ("status_code", "status_code"),
        ("kept_reason", "kept_reason"),
    ),
    optional=(("ids", "id", "id <> " + _DERIVED_ID.format(trace="trace_id::uuid", span=_SPAN_BITS.format(id="id"))),),
    unpacked=(
        ("trace_id", "replace(u.trace_ids::text, '-', '')"),
        ("ts", "u.ts"),
        ("id", "coalesce(u.ids, " + _DERIVED_ID.format(trace="u.trace_ids", span="u.span_ids") + ")"),
        ("duration_ms", "u.duration_ms"),
        ("span_name", "u.span_name"),
        ("route", "u.route"),
        ("status_code", "u.status_code"),
        ("kept_reason", "u.kept_reason"),
    ),
    # Three containments, no subquery: a correlated one is set up again for every staged row and chunk partition
    # (ingest ran 10x slower). A new span is taken for a packed one only if its chunk holds its trace id, its time
    # to the microsecond and its 32 span bits, at any positions (~1e-11 for a late span of a packed trace).
    holds=("c.span_ids @> ARRAY[" + _SPAN_BITS.format(id="{row}.id") + "] AND c.ts @> ARRAY[{row}.ts]"
           " AND c.trace_ids @> ARRAY[{row}.trace_id::uuid]"),
)


def _pack_select(shape: PackedShape, source: str, where: str, target: str | None = None) -> str:
    """INSERT into `target` (default: the chunk table) of the chunks built from the hot-shaped rows of `source`
    matching `where`. A chunk holds the rows of one UTC hour (whatever the session's time zone)."""
    names = [name for name, _ in shape.elements] + [name for name, _, _ in shape.optional]
    columns = ("first_ts", "last_ts", *shape.segment, "row_count", *names)
    arrays = [
        f"string_agg({expression}, E'{JOIN_SEPARATOR}' ORDER BY {shape.order})" if name in shape.joined
        else f"array_agg({expression} ORDER BY {shape.order})" for name, expression in shape.elements] + [
        f"CASE WHEN bool_or({needed}) THEN array_agg({expression} ORDER BY {shape.order}) END"
        for _, expression, needed in shape.optional]
    segment = ", ".join(shape.segment)
    hour = "date_trunc('hour', ts, 'UTC')"
    part = ""
    if shape.max_rows:
        source = (f"(SELECT *, (row_number() OVER (PARTITION BY {hour}, {segment} ORDER BY {shape.order}) - 1)"
                  f" / {int(shape.max_rows)} AS chunk_part FROM {source} WHERE {where}) AS parted")
        where, part = "TRUE", ", chunk_part"
    return (
        f"INSERT INTO {target or shape.chunk_table} ({', '.join(columns)}) "
        f"SELECT min(ts), max(ts), {segment}, count(*), {', '.join(arrays)} "
        f"FROM {source} WHERE {where} "
        f"GROUP BY {hour}, {segment}{part}"
    )


def packed_row_condition(shape: PackedShape, alias: str) -> str:
    """SQL: the row `alias` (with ts and id) of `shape`'s hot table is stored in a chunk already. A chunk
    covers at most CHUNK_SPAN, so only the chunks starting in the hour before the row are read."""
    span_seconds = int(CHUNK_SPAN.total_seconds())
    return (f"EXISTS (SELECT FROM {shape.chunk_table} c WHERE c.first_ts <= {alias}.ts"
            f" AND c.first_ts > {alias}.ts - interval '{span_seconds} seconds'"
            f" AND c.last_ts >= {alias}.ts AND {shape.holds.format(row=alias)})")


def pack_range(cursor, shape: PackedShape, start: datetime, end: datetime) -> int:
    """Move the hot rows with `start <= ts < end` into chunks; returns the rows packed.

    One statement deletes the rows and packs exactly the rows it deleted, so it needs no lock: a row
    written meanwhile is not seen, stays hot and is packed by a later run (into further chunks).
    A row whose (ts, id) is already packed is a re-sent record arriving after its hour was packed (ids are
    deterministic, the hot tables' ON CONFLICT DO NOTHING no longer sees the packed copy): it is dropped.
    """
    hour_chunks = (f"(SELECT * FROM {shape.chunk_table} "
                   "WHERE first_ts >= date_trunc('hour', %s::timestamptz, 'UTC') AND first_ts < %s)")
    # The key's expressions are unqualified: over the unpacked rows in `already_packed`, over the moved row `m`
    # in `fresh` (where `a` has only the key_<n> columns).
    keys = ", ".join(f"{expression} AS key_{n}" for n, expression in enumerate(shape.key))
    same_key = " AND ".join(f"a.key_{n} = ({expression})" for n, expression in enumerate(shape.key))
    already_packed = f"SELECT {keys} FROM ({unpacked_select(shape, hour_chunks)}) AS p"
    packable = f" AND {shape.packable}" if shape.packable else ""
    cursor.execute(
        f"WITH moved AS (DELETE FROM {shape.hot_table} WHERE ts >= %s AND ts < %s{packable} RETURNING *), "
        f"already_packed AS ({already_packed}), "
        "fresh AS (SELECT * FROM moved m WHERE NOT EXISTS "
        f"(SELECT 1 FROM already_packed a WHERE {same_key})), "
        f"packed AS ({_pack_select(shape, 'fresh', 'TRUE')} RETURNING row_count) "
        "SELECT coalesce(sum(row_count), 0) FROM packed",
        [start, end, start, end],
    )
    return int(cursor.fetchone()[0])


def repack_chunks(cursor, shape: PackedShape, chunk_filter: str, filter_params: list, keep: str,
                  keep_params: list) -> tuple[int, int]:
    """Rewrite the chunks matching `chunk_filter` (SQL over the chunk table's columns) with only their rows
    matching `keep` (SQL over the hot table's columns, e.g. `ts >= %s`). Returns (rows kept, rows removed).
    Drops the sampled-only spans of old days, and the rows of a chunk older than the retention cutoff.

    Like `pack_range`, one statement: it rewrites exactly the chunks it deleted, so chunks a concurrent
    `pack_range` adds meanwhile are left alone (and a concurrent repack skips the chunks this one took).
    """
    rows = unpacked_select(shape, "gone")
    cursor.execute(
        f"WITH gone AS (DELETE FROM {shape.chunk_table} WHERE {chunk_filter} RETURNING *), "
        f"unpacked AS ({rows}), "
        f"kept AS ({_pack_select(shape, 'unpacked', keep)} RETURNING row_count) "
        "SELECT (SELECT count(*) FROM unpacked), (SELECT coalesce(sum(row_count), 0) FROM kept)",
        [*filter_params, *keep_params],
    )
    before, kept = cursor.fetchone()
    return int(kept), int(before - kept)


def compact_partition(cursor, shape: PackedShape, partition: str, chunk_filter: str, filter_params: list, keep: str,
                      keep_params: list) -> tuple[int, int]:
    """`repack_chunks` for the chunks of one day partition, which is rewritten whole: returns (rows kept, rows
    removed). Deleted chunks would leave their space behind (VACUUM only marks it free, and nothing is written
    into an old day again); TRUNCATE gives it back. Holds the partition exclusively until the caller's
    transaction ends; a rollback leaves the partition as it was."""
    cursor.execute(f"LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"CREATE TEMPORARY TABLE compacted_chunks (LIKE {shape.chunk_table}) ON COMMIT DROP")
    # IS NOT TRUE: `x = ANY(array)` is NULL, not false, when the array holds a NULL and no x.
    cursor.execute(f"INSERT INTO compacted_chunks SELECT * FROM {partition} WHERE ({chunk_filter}) IS NOT TRUE",
                   filter_params)
    rows = unpacked_select(shape, f"(SELECT * FROM {partition} WHERE {chunk_filter})")
    cursor.execute(
        f"WITH unpacked AS ({rows}), "
        f"kept AS ({_pack_select(shape, 'unpacked', keep, target='compacted_chunks')} RETURNING row_count) "
        "SELECT (SELECT count(*) FROM unpacked), (SELECT coalesce(sum(row_count), 0) FROM kept)",
        [*filter_params, *keep_params],
    )
    before, kept = cursor.fetchone()
    if before:
        cursor.execute(f"TRUNCATE {partition}")
        cursor.execute(f"INSERT INTO {partition} SELECT * FROM compacted_chunks")
    cursor.execute("DROP TABLE compacted_chunks")
    return int(kept), int(before - kept)


def unpacked_select(shape: PackedShape, chunks: str) -> str:
    """The hot-shaped rows of the chunks in `chunks` (a relation or a parenthesised subquery), as the
    views unpack them."""
    names = [name for name, _ in shape.elements] + [name for name, _, _ in shape.optional]
    if shape.unpacked:
        columns = [f"{expression} AS {column}" for column, expression in shape.unpacked]
    else:
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
            f"CROSS JOIN LATERAL unnest({', '.join(_unnested(shape, name) for name in names)})"
            f" AS u({', '.join(names)})")


def _unnested(shape: PackedShape, name: str) -> str:
    """The array of a chunk's `c` element `name` (a joined element split back: telemetry_split_joined, migration
    0016)."""
    return f"telemetry_split_joined(c.{name}, c.row_count)" if name in shape.joined else f"c.{name}"


def add_trace_hours(cursor, hour: datetime) -> None:
    """Add the trace ids of every span and log chunk of `hour` to its rows of the hourly filter, as the chunk
    tables' triggers do per statement (migration 0024's `telemetry_trace_hours_of`); a row changes only when a bit
    does."""
    cursor.execute("SELECT telemetry_trace_hours_of(%s)", [hour])


def forget_trace_hours(cursor, cutoff: datetime) -> int:
    """Remove the hour-filter rows of the hours that end by `cutoff` (retention: their chunks are gone); the hour
    holding the cutoff keeps its row, whose bits of purged traces only make a look-up check that hour's chunks.
    Returns the rows removed."""
    cursor.execute(f"DELETE FROM {TRACE_HOURS} WHERE hour <= %s", [cutoff - CHUNK_SPAN])
    return cursor.rowcount


@dataclass
class PackReport:
    horizon: datetime  # every hour before it was due
    rows_packed: dict[str, int] = field(default_factory=dict)  # hot table -> rows packed
    hours_packed: dict[str, int] = field(default_factory=dict)  # hot table -> hours that had hot rows
    partitions_truncated: list[str] = field(default_factory=list)  # hot partitions emptied by packing
    duration_ms: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.rows_packed.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "horizon": self.horizon.isoformat(), "total_rows": self.total_rows}


def pack_horizon(now: datetime) -> datetime:
    """The end of the last whole hour that ended `TELEMETRY_PACK_AFTER_MINUTES` or more before `now`."""
    due = now - timedelta(minutes=settings.TELEMETRY_PACK_AFTER_MINUTES)
    return due.replace(minute=0, second=0, microsecond=0)


def pack_due(now: datetime | None = None, using: str = "default") -> PackReport:
    """Pack every due hour of both hot tables (default partitions included), oldest first.

    Each hour is one transaction holding the chunk table's partition lock (so `ensure_partitions` never
    sees a chunk land in the default partition while it moves that partition's rows). Idempotent: an hour
    without hot rows costs one index probe, late rows of a packed hour become further chunks.
    Then the hot partitions wholly before the horizon that packing emptied are truncated, giving back
    their space at once.
    """
    report = PackReport(horizon=pack_horizon(now or timezone.now()))
    started = time.perf_counter()
    with job_run(Job.PACK, using=using) as details:
        try:
            due = {shape: list(_hours_with_hot_rows(shape, report.horizon, using)) for shape in (LOGS, TRACES)}
            for shape in due:
                report.rows_packed[shape.hot_table] = report.hours_packed[shape.hot_table] = 0
            for hour in sorted(set().union(*due.values())):
                # Both kinds of an hour in one transaction, its trace-filter rows written once after them: the
                # chunk tables' triggers would write them per statement, the second time as an update of all
                # 128 rows of the hour, which left a dead version of each until VACUUM.
                with transaction.atomic(using=using), connections[using].cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, 'on', true)", [TRACE_HOURS_DEFERRED])
                    for shape, hours in due.items():
                        if hour in hours:
                            lock_partitions(cursor, shape.chunk_table)
                            report.rows_packed[shape.hot_table] += pack_range(cursor, shape, hour,
                                                                              hour + CHUNK_SPAN)
                            report.hours_packed[shape.hot_table] += 1
                    add_trace_hours(cursor, hour)
            for shape in due:
                report.partitions_truncated += _truncate_emptied_partitions(shape.hot_table, report.horizon, using)
        finally:
            report.duration_ms = round((time.perf_counter() - started) * 1000)
            details.update(report.as_dict())
    logger.info("telemetry packing: %d log records and %d spans of the hours before %s packed in %d ms",
                report.rows_packed[LOG_TABLE], report.rows_packed[TRACE_TABLE], report.horizon.isoformat(),
                report.duration_ms)
    return report


def _hours_with_hot_rows(shape: PackedShape, horizon: datetime, using: str):
    """The hours before `horizon` holding hot rows, oldest first, each found by one probe of the (ts, id) key
    when asked for (rows of an hour already yielded that arrive later wait for the next run)."""
    after = None
    while True:
        with connections[using].cursor() as cursor:
            cursor.execute(f"SELECT date_trunc('hour', min(ts)) FROM {shape.hot_table} WHERE ts < %s"
                           + (" AND ts >= %s" if after else ""), [horizon, after] if after else [horizon])
            hour = cursor.fetchone()[0]
        if hour is None:
            return
        yield hour
        after = hour + CHUNK_SPAN


def _truncate_emptied_partitions(table: str, horizon: datetime, using: str) -> list[str]:
    """TRUNCATE the partitions of `table` holding only due hours (and the default partition) that are empty
    but still occupy space. Under an exclusive lock, so no row can arrive between the check and the
    TRUNCATE; a partition someone is reading is skipped (NOWAIT) and truncated by a later run."""
    quote = connections[using].ops.quote_name
    candidates = [p.name for p in day_partitions(table, using) if p.end <= horizon] + [default_partition_name(table)]
    truncated = []
    for name in candidates:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            lock_partitions(cursor, table)  # retention may be dropping it
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL AND pg_total_relation_size(to_regclass(%s)) >= %s",
                           [name, name, EMPTIED_PARTITION_MIN_BYTES])
            if not cursor.fetchone()[0]:
                continue
            try:
                with transaction.atomic(using=using):
                    cursor.execute(f"LOCK TABLE {quote(name)} IN ACCESS EXCLUSIVE MODE NOWAIT")
            except OperationalError:
                continue
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(name)})")
            if not cursor.fetchone()[0]:
                cursor.execute(f"TRUNCATE {quote(name)}")
                truncated.append(name)
    return truncated
