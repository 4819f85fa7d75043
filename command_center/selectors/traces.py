"""Tier 6: the trace index (hot and packed spans), filtered (error / slow / duration / route / domain /
trace), keyset-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet

from command_center.selectors import stored
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.pagination import Cursor, list_page
from telemetry.models import StoredTraceEntry

TRACE_FIELDS = (
    "id",
    "ts",
    "trace_id",
    "span_name",
    "domain",
    "route",
    "status_code",
    "duration_ms",
    "service",
)
DB_DOMAIN = "db"
# status_code is text: an HTTP status (3 digits) or OK/ERROR; "500" <= code <= "599" is a 5xx for 3 digits.
ERROR_CONDITION = Q(status_code="ERROR") | Q(status_code__regex=r"^5[0-9][0-9]$")


def _slow_condition() -> Q:
    db_slow, slow = settings.COMMAND_CENTER_DB_SLOW_MS, settings.COMMAND_CENTER_TRACE_SLOW_MS
    return (Q(domain=DB_DOMAIN) & Q(duration_ms__gte=db_slow)) | (
        ~Q(domain=DB_DOMAIN) & Q(duration_ms__gte=slow)
    )


def filtered_traces(
    start: datetime,
    end: datetime,
    status: str = "all",
    domain: str | None = None,
    route: str | None = None,
    duration_min: int | None = None,
    trace_id: str | None = None,
) -> QuerySet[StoredTraceEntry]:
    # domain and service are segment columns: PostgreSQL checks them on the chunk, before unpacking.
    traces = stored.rows(StoredTraceEntry).filter(stored.window(start, end))
    if status == "error":
        traces = traces.filter(ERROR_CONDITION)
    elif status == "slow":
        traces = traces.filter(_slow_condition())
    if domain:
        traces = traces.filter(domain=domain)
    if route:
        traces = traces.filter(route=route)
    if duration_min is not None:
        traces = traces.filter(duration_ms__gte=duration_min)
    if trace_id:
        traces = traces.filter(stored.of_trace(trace_id))
    return traces


def is_error(status_code: str | None) -> bool:
    return status_code == "ERROR" or (
        status_code is not None
        and len(status_code) == 3
        and status_code.startswith("5")
        and status_code.isdigit()
    )


def trace_row(trace: StoredTraceEntry) -> dict[str, Any]:
    slow_ms = (
        settings.COMMAND_CENTER_DB_SLOW_MS
        if trace.domain == DB_DOMAIN
        else settings.COMMAND_CENTER_TRACE_SLOW_MS
    )
    return {
        **{field: getattr(trace, field) for field in TRACE_FIELDS},
        "error": is_error(trace.status_code),
        "slow": trace.duration_ms >= slow_ms,
    }


def trace_page(
    start: datetime, end: datetime, limit: int, cursor: Cursor | None = None, **filters: Any
) -> dict[str, Any]:
    return list_page(filtered_traces(start, end, **filters), StoredTraceEntry, start, end, cursor, limit,
                     REFRESH_SECONDS["traces"], trace_row)
