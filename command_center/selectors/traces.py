"""Tier 6: the trace index (hot and packed spans), filtered (error / slow / duration / route / domain /
trace), keyset-paginated: as spans (`trace_page`), as one row per trace (`trace_list_page`), and one trace as a
waterfall with its logs (`waterfall`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.logs import log_row
from command_center.selectors.pagination import Cursor, list_page
from telemetry.queries import records
from telemetry.queries import traces as whole_traces
from telemetry.queries.records import is_error_status as is_error

__all__ = [
    "filtered_traces", "is_error", "slow_thresholds", "trace_list_page", "trace_page", "trace_row", "waterfall",
]

# Trace -> logs: the logs of the trace from `margin` before its first span to `margin` after its last end.
LOG_MARGIN_SECONDS = 30
MAX_LOG_MARGIN_SECONDS = 600
WATERFALL_LOGS = 200
# A child span may appear to end up to this much after its parent: durations are whole milliseconds.
NESTING_SLACK = timedelta(milliseconds=1)


def slow_thresholds() -> records.SlowThresholds:
    return records.SlowThresholds(settings.COMMAND_CENTER_DB_SLOW_MS, settings.COMMAND_CENTER_TRACE_SLOW_MS)


def filtered_traces(
    start: datetime,
    end: datetime,
    status: str = "all",
    domain: str | None = None,
    route: str | None = None,
    duration_min: int | None = None,
    trace_id: str | None = None,
) -> QuerySet:
    return records.spans(start, end, status=status, domain=domain, route=route, duration_min=duration_min,
                         trace_id=trace_id, slow=slow_thresholds())


def trace_row(span: records.SpanRecord) -> dict[str, Any]:
    return {**vars(span), "error": span.failed, "slow": span.slow(slow_thresholds())}


def trace_page(
    start: datetime, end: datetime, limit: int, cursor: Cursor | None = None, **filters: Any
) -> dict[str, Any]:
    return list_page(filtered_traces(start, end, **filters), start, end, cursor, limit, REFRESH_SECONDS["traces"],
                     trace_row)


def trace_summary_row(trace: whole_traces.TraceSummary) -> dict[str, Any]:
    return {**vars(trace), "error": trace.error, "slow": trace.slow_count > 0}


def trace_list_page(
    start: datetime, end: datetime, limit: int, cursor: Cursor | None = None, **filters: Any
) -> dict[str, Any]:
    """One row per trace starting in [start, end), newest first; filters as the span list has them, met by
    at least one span of the trace (`duration_min`: by the whole trace)."""
    chosen = whole_traces.TraceFilters(**filters)

    def read_page(queryset, page_start, page_end, after, page_limit):
        return whole_traces.trace_page(page_start, page_end, after, page_limit, chosen, slow=slow_thresholds())

    return list_page(filtered_traces(start, end), start, end, cursor, limit, REFRESH_SECONDS["traces"],
                     trace_summary_row, read_page=read_page)


def _depths(spans: list[records.SpanRecord]) -> list[int]:
    """Nesting by time (the index keeps no parent ids): a span lies under the latest earlier span that
    contains it. `spans` are in start order, the longest first on a tie."""
    open_ends: list[datetime] = []
    depths = []
    for span in spans:
        end = span.ts + timedelta(milliseconds=span.duration_ms)
        while open_ends and open_ends[-1] + NESTING_SLACK < end:
            open_ends.pop()
        depths.append(len(open_ends))
        open_ends.append(end)
    return depths


def _ms(delta: timedelta) -> float:
    return round(delta.total_seconds() * 1000, 3)


def waterfall(trace_id: str, start: datetime, end: datetime, margin_seconds: int = LOG_MARGIN_SECONDS
              ) -> dict[str, Any]:
    """The kept spans of one trace starting in [start, end) as a waterfall (offset from the trace's start,
    duration, depth), and its logs from `margin_seconds` before its first span to as long after its end."""
    spans, spans_truncated = whole_traces.trace_spans(trace_id, start, end, slow=slow_thresholds())
    if not spans:
        return {"trace_id": trace_id, "found": False, "spans": [], "spans_truncated": False, "logs": None}
    first = spans[0].ts
    last_end = max(span.ts + timedelta(milliseconds=span.duration_ms) for span in spans)
    margin = timedelta(seconds=margin_seconds)
    logs_from, logs_to = first - margin, last_end + margin
    logs, logs_truncated = whole_traces.trace_logs(trace_id, logs_from, logs_to + records.RESOLUTION,
                                                   WATERFALL_LOGS)
    rows = [
        {**trace_row(span), "offset_ms": _ms(span.ts - first), "depth": depth}
        for span, depth in zip(spans, _depths(spans), strict=True)
    ]
    return {
        "trace_id": trace_id,
        "found": True,
        "start": first,
        "end": last_end,
        "duration_ms": _ms(last_end - first),
        "span_count": len(rows),
        "error": any(row["error"] for row in rows),
        "spans": rows,
        "spans_truncated": spans_truncated,
        "logs": {
            "from": logs_from,
            "to": logs_to,
            "margin_seconds": margin_seconds,
            "items": [log_row(log) for log in logs],
            "truncated": logs_truncated,
        },
    }
