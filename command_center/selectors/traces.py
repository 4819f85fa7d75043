"""Tier 6: the trace index (hot and packed spans), filtered (error / slow / duration / route / domain /
trace), keyset-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.pagination import Cursor, list_page
from telemetry.queries import records
from telemetry.queries.records import is_error_status as is_error

__all__ = ["filtered_traces", "is_error", "slow_thresholds", "trace_page", "trace_row"]


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
