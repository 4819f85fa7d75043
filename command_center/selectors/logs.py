"""Tier 5: curated WARN/ERROR logs (hot and packed), filtered, newest first, keyset-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from command_center.selectors.config import REFRESH_SECONDS
from command_center.selectors.pagination import Cursor, list_page
from telemetry.queries import error_groups, records


def filtered_logs(
    start: datetime,
    end: datetime,
    level: str | None = None,
    domain: str | None = None,
    service: str | None = None,
    search: str | None = None,
    trace_id: str | None = None,
    group: str | None = None,
) -> QuerySet:
    found = records.logs(start, end, level=level, domain=domain, service=service, search=search, trace_id=trace_id)
    return error_groups.logs_of_group(found, group) if group else found


def log_row(log: records.LogRecord) -> dict[str, Any]:
    # its fields, in order (a shallow copy: asdict would deep-copy attrs), and the error group of an ERROR record
    return {**vars(log), "group": error_groups.group_of_log(log.level, log.service, log.event, log.message)}


def log_page(
    start: datetime, end: datetime, limit: int, cursor: Cursor | None = None, **filters: str | None
) -> dict[str, Any]:
    return list_page(filtered_logs(start, end, **filters), start, end, cursor, limit, REFRESH_SECONDS["logs"],
                     log_row)
