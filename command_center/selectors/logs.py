"""Tier 5: curated WARN/ERROR logs (hot and packed), filtered, newest first, keyset-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.pagination import Cursor, list_page
from telemetry.queries import records


def filtered_logs(
    start: datetime,
    end: datetime,
    level: str | None = None,
    domain: str | None = None,
    service: str | None = None,
    search: str | None = None,
    trace_id: str | None = None,
) -> QuerySet:
    return records.logs(start, end, level=level, domain=domain, service=service, search=search, trace_id=trace_id)


def log_row(log: records.LogRecord) -> dict[str, Any]:
    return dict(vars(log))  # its fields, in order; a shallow copy (asdict would deep-copy attrs)


def log_page(
    start: datetime, end: datetime, limit: int, cursor: Cursor | None = None, **filters: str | None
) -> dict[str, Any]:
    return list_page(filtered_logs(start, end, **filters), start, end, cursor, limit, REFRESH_SECONDS["logs"],
                     log_row)
