"""Error groups as ingest counted them (telemetry.error_groups): the only reader of their tables.

- `groups_in_window`: every group with errors in a window, with its count there (minute rows whose minute
  starts in the window) and what the group table knows of it;
- `bucket_counts`: the errors of some groups per time bucket (a rate sparkline);
- `group_of_log`: the group key of a log record (None for WARN), for lists and the live feed;
- `logs_of_group`: narrows a `records.logs` queryset to the ERROR records of one group, in SQL with the very
  rules of `telemetry.fingerprints` (its template rules, applied by PostgreSQL's regexp_replace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connections
from django.db.models import F, Func, QuerySet, TextField, Value
from django.db.models.lookups import Exact

from kaiku_ops.db_routers import read_alias
from telemetry.contract import LogLevel
from telemetry.error_groups import GROUPS_TABLE, MINUTES_TABLE, fingerprint_of
from telemetry.fingerprints import TEMPLATE_RULES, Source, fingerprint_hex, fingerprint_int

_PLACEHOLDERS = tuple(placeholder for _, placeholder in TEMPLATE_RULES)


@dataclass(frozen=True)
class GroupCount:
    """One group and its errors in a window. `group` is the 16-hex-digit key; `event`/`message`/`trace_id`
    are of its newest occurrence; `routes` the first routes it touched (at most a few)."""

    group: str
    source: str
    service: str
    event_template: str
    message_template: str
    event: str
    message: str
    trace_id: str | None
    routes: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    count: int


def groups_in_window(start: datetime, end: datetime, service: str | None = None,
                     search: str | None = None) -> list[GroupCount]:
    """The groups with errors in [start, end) (by minute start), optionally of one service and whose
    templates or example contain `search` (case-insensitive); most errors first."""
    conditions, params = [], [start, end]
    if service:
        conditions.append("g.service = %s")
        params.append(service)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append("(g.event_template ILIKE %s OR g.message_template ILIKE %s OR g.example_event ILIKE %s"
                          " OR g.example_message ILIKE %s)")
        params += [pattern] * 4
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT g.fingerprint, g.source, g.service, g.event_template, g.message_template, g.example_event,
                       g.example_message, g.example_trace_id, g.routes, g.first_seen, g.last_seen, c.count
                FROM (SELECT fingerprint, sum(count)::bigint AS count FROM {MINUTES_TABLE}
                      WHERE ts >= %s AND ts < %s GROUP BY fingerprint) AS c
                JOIN {GROUPS_TABLE} AS g USING (fingerprint)
                {where}
                ORDER BY c.count DESC, g.last_seen DESC""",
            params,
        )
        return [GroupCount(fingerprint_hex(row[0]), *row[1:8], tuple(row[8]), *row[9:]) for row in cursor.fetchall()]


def bucket_counts(groups: Sequence[str], start: datetime, end: datetime, step_seconds: int) -> dict[str, list[int]]:
    """Errors of each group (16-hex keys) per bucket of `step_seconds` from `start` (bucket i holds the minutes
    starting in [start + i·step, start + (i+1)·step)), zeros included."""
    buckets = max(1, -(-int((end - start).total_seconds()) // step_seconds))
    counts = {group: [0] * buckets for group in groups}
    if not groups:
        return counts
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT fingerprint, floor(extract(epoch FROM ts - %s) / %s)::int AS bucket, sum(count)
                FROM {MINUTES_TABLE} WHERE fingerprint = ANY(%s) AND ts >= %s AND ts < %s GROUP BY 1, 2""",
            [start, step_seconds, [fingerprint_int(group) for group in groups], start, end],
        )
        for fingerprint, bucket, count in cursor.fetchall():
            counts[fingerprint_hex(fingerprint)][bucket] = int(count)
    return counts


def group_of_log(level: str, service: str, event: str, message: str) -> str | None:
    """The group key of a log record: its fingerprint for an ERROR record, None for a WARN one."""
    if level != LogLevel.ERROR:
        return None
    return fingerprint_of(Source.LOG, service, event, message).as_hex


def _templated(column: str) -> Func:
    expression = F(column)
    for pattern, placeholder in TEMPLATE_RULES:
        expression = Func(expression, Value(pattern), Value(placeholder), Value("g"), function="regexp_replace",
                          output_field=TextField())
    return expression


def _literal_prefix(message_template: str) -> str:
    """The start of every message of the template: its text before the first placeholder."""
    cut = min((message_template.find(placeholder) for placeholder in _PLACEHOLDERS
               if placeholder in message_template), default=len(message_template))
    return message_template[:cut]


def logs_of_group(queryset: QuerySet, group: str) -> QuerySet:
    """`queryset` (of `records.logs`) narrowed to the ERROR records of the log group `group` (16 hex digits;
    ValueError otherwise); empty when no such log group is stored."""
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(f"SELECT service, event_template, message_template FROM {GROUPS_TABLE}"
                       " WHERE fingerprint = %s AND source = %s", [fingerprint_int(group), Source.LOG.value])
        found = cursor.fetchone()
    if found is None:
        return queryset.none()
    service, event_template, message_template = found
    narrowed = queryset.filter(level=LogLevel.ERROR.value, service=service,
                               message__startswith=_literal_prefix(message_template))
    # An event template without placeholders is the event name itself: compared as it is (cheaper).
    event = _templated("event") if any(placeholder in event_template for placeholder in _PLACEHOLDERS) else F("event")
    return narrowed.filter(Exact(event, Value(event_template)), Exact(_templated("message"), Value(message_template)))
