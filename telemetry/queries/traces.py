"""Whole traces from the kept spans (hot and packed alike): one summary row per trace, a trace's spans, and the
logs of a trace around its time window.

The trace index keeps entry spans (no parent, or SERVER/CONSUMER) and db spans, not every span, and no parent
ids: a trace here is the set of its kept spans. Its summary:

- `start`: its earliest kept span's start; `duration_ms`: from there to the latest end of a kept span;
- the root: its earliest non-db span (ties: the longest), else its earliest span; its name, service and route
  stand for the trace;
- `span_count`, `error_count` (spans that failed: `records.ERROR_CONDITION`), `slow_count` (by `SlowThresholds`).

A trace belongs to the window its start falls in. Pages are newest start first, ties by trace id, after a
`records.Position` (the start and the trace id read as a UUID), read in the widening slices of the span lists.
The spans of a trace are looked for up to `TRACE_REACH` around its start: spans starting later than that are
not counted in its row (the spans of one trace, `trace_spans`, are all there).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import Q

from kaiku_ops.db_routers import read_alias
from telemetry.ingest.traces import DOMAIN_DB
from telemetry.models import StoredTraceEntry
from telemetry.queries import records, stored

# How far apart the first and the last kept span of one trace may start and still be summed into one row (a
# request of the platform times out after 30 s; the simulated heavy day's widest trace spans 0.8 s).
TRACE_REACH = timedelta(minutes=1)
# A page of traces is read in slices newest first, like the span lists, but starting narrower: every trace of a
# slice is grouped before the newest ones are picked, and a busy hour holds some 30,000 traces.
FIRST_SLICES = (timedelta(minutes=2), timedelta(minutes=15))
# A waterfall shows at most this many spans and the logs list at most this many lines.
MAX_TRACE_SPANS = 1000


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    start: datetime
    duration_ms: int
    span_count: int
    error_count: int
    slow_count: int
    root_span: str
    service: str
    route: str | None

    @property
    def error(self) -> bool:
        return self.error_count > 0

    @property
    def position(self) -> records.Position:
        return records.Position(self.start, uuid.UUID(hex=self.trace_id))


@dataclass(frozen=True)
class TraceFilters:
    """What the trace list keeps: traces with an error (`status="error"`) or a slow span (`"slow"`), a span of
    `domain` / on `route`, lasting at least `duration_min` ms, or the one trace `trace_id`."""

    status: str = "all"
    domain: str | None = None
    route: str | None = None
    duration_min: int | None = None
    trace_id: str | None = None


def _where_sql(condition: Q, using: str) -> tuple[str, list]:
    """A filter on the stored spans as SQL over the view (columns qualified by its name), with its parameters:
    the span conditions are defined once, as Q objects, and reused here."""
    query = StoredTraceEntry.objects.using(using).filter(condition).query
    sql, params = query.where.as_sql(query.get_compiler(using), connections[using])
    return sql, list(params)


_TIME_ORDER = "ORDER BY domain = %s, ts, duration_ms DESC, id"


def _page_sql(
    slice_start: datetime, slice_end: datetime, spans_from: datetime, spans_to: datetime,
    after: records.Position | None, filters: TraceFilters, slow: records.SlowThresholds, limit: int, using: str,
) -> tuple[str, list]:
    error_sql, error_params = _where_sql(records.ERROR_CONDITION, using)
    slow_sql, slow_params = _where_sql(slow.condition(), using)
    window_sql, window_params = stored.window_sql(spans_from, spans_to)
    where, where_params = [window_sql], [*window_params]
    if filters.trace_id:
        trace_sql, trace_params = _where_sql(stored.of_trace(filters.trace_id), using)
        where.append(trace_sql)
        where_params += trace_params
    having = ["min(ts) >= %s", "min(ts) < %s"]
    having_params: list = [slice_start, slice_end]
    if after is not None:
        having.append("(min(ts), trace_id) < (%s, %s)")
        having_params += [after.ts, after.id.hex]
    if filters.status == "error":
        having.append("bool_or(failed)")
    elif filters.status == "slow":
        having.append(f"count(*) FILTER (WHERE {slow_sql}) > 0")
        having_params += slow_params
    if filters.domain:
        having.append("bool_or(domain = %s)")
        having_params.append(filters.domain)
    if filters.route:
        having.append("bool_or(route = %s)")
        having_params.append(filters.route)
    if filters.duration_min is not None:
        having.append("max(ts + duration_ms * interval '1 millisecond') - min(ts) >= %s * interval '1 millisecond'")
        having_params.append(filters.duration_min)
    table = StoredTraceEntry._meta.db_table
    # Two steps over the slice's spans, read once: which traces make the page (cheap aggregates, hashed), then the
    # summary of those few only (the ordered root picks sort each trace's spans; over a busy hour's ~30,000 traces
    # they cost more than everything else). Whether a span failed is decided once, as the slice is read, and the
    # summary step joins the page's traces (hashed) instead of comparing each span with an array of 51 ids.
    sql = f"""
        WITH spans AS MATERIALIZED (
            SELECT trace_id, ts, id, duration_ms, domain, span_name, service, route, status_code, kept_reason,
                   {error_sql} AS failed
            FROM {table} WHERE {" AND ".join(where)}),
        page AS (
            SELECT trace_id FROM spans AS {table}
            GROUP BY trace_id
            HAVING {" AND ".join(having)}
            ORDER BY min(ts) DESC, trace_id DESC
            LIMIT %s)
        SELECT trace_id, min(ts), max(ts + duration_ms * interval '1 millisecond'), count(*),
               count(*) FILTER (WHERE failed), count(*) FILTER (WHERE {slow_sql}),
               (array_agg(span_name {_TIME_ORDER}))[1], (array_agg(service {_TIME_ORDER}))[1],
               (array_agg(route {_TIME_ORDER}))[1]
        FROM spans AS {table} JOIN page USING (trace_id)
        GROUP BY trace_id
        ORDER BY 2 DESC, 1 DESC"""
    params = [*error_params, *where_params, *having_params, limit, *slow_params, DOMAIN_DB, DOMAIN_DB, DOMAIN_DB]
    return sql, params


def _summary(row: tuple) -> TraceSummary:
    trace_id, first, last_end, spans, errors, slow, name, service, route = row
    duration = round((last_end - first).total_seconds() * 1000)
    return TraceSummary(trace_id, first, duration, spans, errors, slow, name, service, route)


def _slices(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) newest first: FIRST_SLICES below `end`, then the widening slices of the span lists."""
    for width in FIRST_SLICES:
        slice_start = max(start, end - width)
        yield slice_start, end
        if slice_start <= start:
            return
        end = slice_start
    yield from records.newest_first_bounds(start, end)


def trace_page(
    start: datetime, end: datetime, after: records.Position | None, limit: int, filters: TraceFilters,
    *, slow: records.SlowThresholds,
) -> tuple[list[TraceSummary], records.Position | None]:
    """One page of the traces that start in [start, end) and pass `filters`, newest start first, and the
    position the next page starts after (None: no more traces)."""
    using = read_alias()
    upper = end if after is None else min(end, after.ts + records.RESOLUTION)
    found: list[TraceSummary] = []
    with connections[using].cursor() as cursor:
        for slice_start, slice_end in _slices(start, upper):
            spans_from, spans_to = max(start, slice_start - TRACE_REACH), min(end, slice_end + TRACE_REACH)
            sql, params = _page_sql(slice_start, slice_end, spans_from, spans_to, after, filters, slow,
                                    limit + 1 - len(found), using)
            cursor.execute(sql, params)
            found += [_summary(row) for row in cursor.fetchall()]
            if len(found) > limit:
                break
    more = len(found) > limit
    found = found[:limit]
    return found, (found[-1].position if more else None)


def trace_spans(trace_id: str, start: datetime, end: datetime, *, slow: records.SlowThresholds
                ) -> tuple[list[records.SpanRecord], bool]:
    """The kept spans of one trace that start in [start, end), in start order (ties: the longest first), at
    most MAX_TRACE_SPANS, and whether more were left out."""
    rows = list(records.spans(start, end, trace_id=trace_id, slow=slow)
                .order_by("ts", "-duration_ms", "id")[:MAX_TRACE_SPANS + 1])
    return [records._record(row) for row in rows[:MAX_TRACE_SPANS]], len(rows) > MAX_TRACE_SPANS


def trace_logs(trace_id: str, start: datetime, end: datetime, limit: int) -> tuple[list[records.LogRecord], bool]:
    """The logs of one trace with start <= ts < end, oldest first, at most `limit`, and whether more were left
    out."""
    rows = list(records.logs(start, end, trace_id=trace_id).order_by("ts", "id")[:limit + 1])
    return [records._record(row) for row in rows[:limit]], len(rows) > limit
