"""Tier 5: curated WARN/ERROR logs (hot and packed), filtered, newest first, keyset-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from command_center.selectors import stored
from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.pagination import Cursor, list_page
from telemetry.models import StoredLogEvent

LOG_FIELDS = ("id", "ts", "level", "service", "domain", "event", "message", "trace_id", "span_id", "attrs")


def filtered_logs(
    start: datetime,
    end: datetime,
    level: str | None = None,
    domain: str | None = None,
    service: str | None = None,
    search: str | None = None,
    trace_id: str | None = None,
) -> QuerySet[StoredLogEvent]:
    # level, domain and service are segment columns: PostgreSQL checks them on the chunk, before unpacking.
    logs = stored.rows(StoredLogEvent).filter(stored.window(start, end))
    if level:
        logs = logs.filter(level=level)
    if domain:
        logs = logs.filter(domain=domain)
    if service:
        logs = logs.filter(service=service)
    if search:
        logs = logs.filter(Q(event__icontains=search) | Q(message__icontains=search))
    if trace_id:
        logs = logs.filter(stored.of_trace(trace_id))
    return logs


def log_row(log: StoredLogEvent) -> dict[str, Any]:
    return {field: getattr(log, field) for field in LOG_FIELDS}


def log_page(
    start: datetime, end: datetime, limit: int, cursor: Cursor | None = None, **filters: str | None
) -> dict[str, Any]:
    return list_page(filtered_logs(start, end, **filters), StoredLogEvent, start, end, cursor, limit,
                     REFRESH_SECONDS["logs"], log_row)
