"""Stored logs and spans, hot and packed alike: filtered, newest first, a keyset page at a time.

Every read goes through the `*_all` views (models `StoredLogEvent` / `StoredTraceEntry`) with the chunk
conditions of `telemetry.queries.stored`, so PostgreSQL unpacks only the chunks a read can use. Callers get
querysets to narrow further (`logs`, `spans`: an export streams them), pages of `LogRecord` / `SpanRecord`
(`page`), and the slow-query ranking of db spans (`slow_queries`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import BooleanField, F, Func, Q, QuerySet

from kaiku_ops.db_routers import read_alias
from telemetry import packing, span_errors
from telemetry.ingest.traces import DOMAIN_DB
from telemetry.models import StoredLogEvent, StoredLogLookup, StoredTraceEntry, StoredTraceLookup
from telemetry.queries import stored


class SpanIsError(Func):
    """SQL `telemetry_span_is_error(status_code, kept_reason)`: the definition of telemetry.span_errors."""

    function = span_errors.SQL_FUNCTION
    output_field = BooleanField()


ERROR_CONDITION = Q(SpanIsError(F("status_code"), F("kept_reason")))
is_error_status = span_errors.stored_is_error  # the Python twin of ERROR_CONDITION


@dataclass(frozen=True)
class Position:
    """Where a page ended: the (ts, id) of its last row; the next page holds the rows strictly after it."""

    ts: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class SlowThresholds:
    """From how many milliseconds a span counts as slow: db spans and all others."""

    db_ms: int
    other_ms: int

    def for_domain(self, domain: str) -> int:
        return self.db_ms if domain == DOMAIN_DB else self.other_ms

    def condition(self) -> Q:
        return (Q(domain=DOMAIN_DB) & Q(duration_ms__gte=self.db_ms)) | (
            ~Q(domain=DOMAIN_DB) & Q(duration_ms__gte=self.other_ms)
        )


@dataclass(frozen=True)
class LogRecord:
    id: uuid.UUID
    ts: datetime
    level: str
    service: str
    domain: str
    event: str
    message: str
    trace_id: str | None
    span_id: str | None
    attrs: dict[str, Any]


@dataclass(frozen=True)
class SpanRecord:
    id: uuid.UUID
    ts: datetime
    trace_id: str
    span_name: str
    domain: str
    route: str | None
    status_code: str | None
    duration_ms: int
    service: str
    kept_reason: str | None

    @property
    def failed(self) -> bool:
        return span_errors.stored_is_error(self.status_code, self.kept_reason)

    def slow(self, thresholds: SlowThresholds) -> bool:
        return self.duration_ms >= thresholds.for_domain(self.domain)


_RECORDS = {StoredLogEvent: LogRecord, StoredLogLookup: LogRecord, StoredTraceEntry: SpanRecord,
            StoredTraceLookup: SpanRecord}
_PACKED_SHAPES = {StoredLogEvent: packing.LOGS, StoredLogLookup: packing.LOGS, StoredTraceEntry: packing.TRACES,
                  StoredTraceLookup: packing.TRACES}
_FIELDS = {model: tuple(field.name for field in fields(record)) for model, record in _RECORDS.items()}


def _record(row) -> LogRecord | SpanRecord:
    model = type(row)
    return _RECORDS[model](**{name: getattr(row, name) for name in _FIELDS[model]})


def logs(
    start: datetime,
    end: datetime,
    level: str | None = None,
    domain: str | None = None,
    service: str | None = None,
    search: str | None = None,
    trace_id: str | None = None,
) -> QuerySet[StoredLogEvent]:
    """Log records with start <= ts < end matching every filter given (`search`: in event or message)."""
    # level, domain and service are segment columns: PostgreSQL checks them on the chunk, before unpacking.
    found = (stored.logs_of_trace(trace_id, start, end) if trace_id else stored.rows(StoredLogEvent)).filter(
        _in_window(bool(trace_id), start, end))
    if level:
        found = found.filter(level=level)
    if domain:
        found = found.filter(domain=domain)
    if service:
        found = found.filter(service=service)
    if search:
        found = found.filter(stored.containing(search))
    return found


def spans(
    start: datetime,
    end: datetime,
    status: str = "all",
    domain: str | None = None,
    route: str | None = None,
    duration_min: int | None = None,
    trace_id: str | None = None,
    *,
    slow: SlowThresholds,
) -> QuerySet[StoredTraceEntry]:
    """Kept spans with start <= ts < end; `status` "error" or "slow" (by `slow`) keeps only those."""
    # domain and service are segment columns: PostgreSQL checks them on the chunk, before unpacking. One trace's
    # spans are read position by position from the few chunks holding it.
    found = (stored.spans_of_trace(trace_id, start, end) if trace_id else stored.rows(StoredTraceEntry)).filter(
        _in_window(bool(trace_id), start, end))
    if status == "error":
        found = found.filter(ERROR_CONDITION)
    elif status == "slow":
        found = found.filter(slow.condition())
    if domain:
        found = found.filter(domain=domain)
    if route:
        found = found.filter(route=route)
    if duration_min is not None:
        found = found.filter(duration_ms__gte=duration_min)
    return found


def _in_window(one_trace: bool, start: datetime, end: datetime) -> Q:
    # One trace's chunks are named by the hour filter (of the hours of the window): bounds on the chunks would only
    # add conditions to plan for each hot partition.
    return Q(ts__gte=start, ts__lt=end) if one_trace else stored.window(start, end)


# Pages are read newest first in widening time slices below the page's upper bound. A selective filter
# (free-text search) makes PostgreSQL misjudge the rows it must read and sort a whole day instead of
# walking the (ts, id) index; a one-hour slice usually fills a page at a fraction of that cost. For packed
# rows each slice also bounds the chunks (stored.window): only the chunks overlapping the slice are unpacked.
SLICES = (timedelta(hours=1), timedelta(hours=6))
# `newest_ts` looks further before planning the whole window: each of its queries is cheap to run, and what costs is
# planning every day partition of it, for a window whose last hours are empty (the platform went quiet).
NEWEST_SLICES = (*SLICES, timedelta(days=1), timedelta(days=7))
# The resolution of timestamptz: `ts < t + RESOLUTION` is `ts <= t`.
RESOLUTION = timedelta(microseconds=1)


def newest_first_bounds(start: datetime, end: datetime, widths: tuple[timedelta, ...] = SLICES
                        ) -> Iterator[tuple[datetime, datetime]]:
    """The window [start, end) as slices below `end` of growing `widths` (from `end`), then the rest, newest first:
    (slice start, slice end)."""
    slice_end = end
    for width in (*widths, None):
        slice_start = max(start, end - width) if width is not None else start
        yield slice_start, slice_end
        if slice_start <= start:
            return
        slice_end = slice_start


def newest_first_slices(start: datetime, end: datetime) -> Iterator[Q]:
    """`newest_first_bounds` as filters to apply to a queryset of `logs` or `spans`, one query per slice."""
    for slice_start, slice_end in newest_first_bounds(start, end):
        yield stored.window(slice_start, slice_end)


def newest_first(queryset: QuerySet) -> QuerySet:
    """`queryset` in the order pages and exports read: newest first, ties by id."""
    return queryset.order_by("-ts", "-id")


def newest_rows(queryset: QuerySet, start: datetime, end: datetime, count: int) -> list:
    """Up to `count` rows of `queryset` (of `logs` or `spans`) with start <= ts < end, newest first."""
    rows: list = []
    # One trace's rows are few and found through the hour filter whatever the window: slices would only repeat
    # the planning over every day partition of the hot rows once per slice.
    one_trace = queryset.model in (StoredTraceLookup, StoredLogLookup)
    slices = [_in_window(True, start, end)] if one_trace else newest_first_slices(start, end)
    for in_slice in slices:
        rows += newest_first(queryset.filter(in_slice))[: count - len(rows)]
        if len(rows) >= count:
            break
    return rows


def page(
    queryset: QuerySet, start: datetime, end: datetime, after: Position | None, limit: int
) -> tuple[list[LogRecord | SpanRecord], Position | None]:
    """One page of `queryset` (of `logs` or `spans`, already limited to the window [start, end)), newest
    first, and the position the next page starts after (None: no more rows). A page holds `limit` rows, more
    only when identical log records straddle its end (`_page_size`)."""
    upper = end
    if after is not None:
        # Row comparison (ts, id) < (after.ts, after.id): ts <= after.ts bounds the slices, and the
        # rows of after.ts from after.id up are excluded.
        queryset = queryset.exclude(ts=after.ts, id__gte=after.id)
        upper = min(end, after.ts + RESOLUTION)
    wanted = limit + 1
    rows = newest_rows(queryset, start, upper, wanted)
    size = _page_size(rows, limit)
    while size == len(rows) == wanted:  # a run of identical records reaches past the rows read: read further
        wanted *= 2
        rows = newest_rows(queryset, start, upper, wanted)
        size = _page_size(rows, limit)
    next_position = Position(rows[size - 1].ts, rows[size - 1].id) if size < len(rows) else None
    return [_record(row) for row in rows[:size]], next_position


def _page_size(rows: list, limit: int) -> int:
    """How many of `rows` (newest first) a page holds: `limit`, or more to end after a run of rows with one
    position. Byte-identical log records have one content id (migration 0016): the next page starts strictly
    after a position, so a page ending inside such a run would lose the rest of it."""
    size = min(limit, len(rows))
    while size < len(rows) and (rows[size].ts, rows[size].id) == (rows[size - 1].ts, rows[size - 1].id):
        size += 1
    return size


def newest_ts(queryset: QuerySet, start: datetime, end: datetime) -> datetime | None:
    """The time of the newest row of the model `queryset` reads (any row, whatever its filters) in the window.

    Read from the chunks' bounds, not from their rows: a chunk's `last_ts` is its newest row, so a chunk that
    ends inside the window answers without being unpacked. Only a chunk that straddles `end` is unpacked, and
    only its times. The hot rows answer from their (ts, id) index.

    Asked slice by slice, newest first (`newest_first_bounds` of NEWEST_SLICES): the first slice holding a row has
    the newest one, and a slice of an hour or six plans and reads the partitions of a day or two, where the whole
    window (30 days) planned every partition of it for an answer that is almost always in its last hour."""
    shape = _PACKED_SHAPES[queryset.model]
    for slice_start, slice_end in newest_first_bounds(start, end, NEWEST_SLICES):
        newest = _newest_ts_in(shape, slice_start, slice_end)
        if newest is not None:
            return newest
    return None


def _newest_ts_in(shape: packing.PackedShape, start: datetime, end: datetime) -> datetime | None:
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT greatest(
                    (SELECT max(ts) FROM {shape.hot_table} WHERE ts >= %(start)s AND ts < %(end)s),
                    (SELECT max(last_ts) FROM {shape.chunk_table}
                     WHERE first_ts >= %(first_from)s AND first_ts < %(end)s
                       AND last_ts >= %(start)s AND last_ts < %(end)s),
                    (SELECT max(t.ts) FROM {shape.chunk_table} c CROSS JOIN LATERAL unnest(c.ts) AS u(ts)
                     CROSS JOIN LATERAL (SELECT {shape.unnested_ts} AS ts) AS t
                     WHERE c.first_ts >= %(first_from)s AND c.first_ts < %(end)s AND c.last_ts >= %(end)s
                       AND t.ts >= %(start)s AND t.ts < %(end)s))""",
            {"start": start, "end": end, "first_from": start - packing.CHUNK_SPAN},
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class SlowQuery:
    span_name: str
    count: int
    p95_ms: float
    max_ms: int


def slow_queries(start: datetime, end: datetime, limit: int) -> list[SlowQuery]:
    """db spans (hot and packed) of [start, end) grouped by span name, slowest p95 first."""
    # domain is a segment column of packed spans: only the db chunks of the window are unpacked.
    in_window, window_params = stored.window_sql(start, end)
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT span_name, count(*), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
                       max(duration_ms)
                FROM {StoredTraceEntry._meta.db_table} WHERE domain = %s AND {in_window}
                GROUP BY span_name ORDER BY 3 DESC, 1 LIMIT %s""",
            [DOMAIN_DB, *window_params, limit],
        )
        return [SlowQuery(*row) for row in cursor.fetchall()]
