"""Shared by the selector tests of logs and spans: packing part of the stored rows, and reading a whole
list by following its cursors."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.db import connection, transaction

from command_center.selectors.pagination import Cursor
from telemetry import packing


def pack(start: datetime, end: datetime) -> int:
    """Move the hot log records and spans with start <= ts < end into chunks, as the packing job does."""
    with transaction.atomic(), connection.cursor() as cursor:
        return packing.pack_range(cursor, packing.LOGS, start, end) + packing.pack_range(
            cursor, packing.TRACES, start, end
        )


def read_id(log) -> uuid.UUID:
    """The id a log record (a LogEvent) is read with, hot or packed: of its content (migration 0016), not the
    hot row's own id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_log_row_id(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                       [log.ts, log.level, log.service, log.domain, log.event, log.message, log.trace_id,
                        log.span_id, json.dumps(log.attrs)])
        return cursor.fetchone()[0]


def hot_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def walk(page, start: datetime, end: datetime, limit: int, **filters) -> list[dict]:
    """Every page of a list selector (`log_page` / `trace_page`), following next_cursor: the pages'
    items, next cursors and newest_ts, in order."""
    pages, cursor = [], None
    while True:
        body = page(start, end, limit, Cursor.decode(cursor) if cursor else None, **filters)
        pages.append({key: body[key] for key in ("items", "next_cursor", "newest_ts")})
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
