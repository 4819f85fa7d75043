"""Error groups counted at ingest: one row per group, one row per group and UTC minute (issue 16, item 2).

The receiver calls `record_logs` with the ERROR log rows it has just inserted and `record_spans` with the
failed spans it has just inserted, inside the transaction that stores them: a re-sent batch inserts nothing
new and so counts nothing twice, and a request that fails to store counts nothing. What a group is is
`telemetry.fingerprints`.

Counts stay exact with several receivers at once: minute rows are added with ON CONFLICT ... DO UPDATE
count = count + excluded.count. Rows are written in key order (groups, then minutes, each by fingerprint
and minute), so two transactions touching the same groups queue instead of deadlocking. A group keeps its
earliest first_seen and latest last_seen whatever order requests arrive in; its example (event, message,
trace id) is the newest occurrence's, and it lists the first MAX_ROUTES routes it touched.

Each minute is also added to its UTC hour (`telemetry_error_group_hours`, migration 0015) and its UTC day
(`telemetry_error_group_days`, migration 0018) in the same statement, so an hour row is always the sum of its
minute rows and a day row the sum of its hour rows: readers (telemetry.queries.error_groups) take whole days and
hours of a window from them and only the ragged edges from the minutes.

Retention (telemetry.retention) deletes minute, hour and day rows older than 30 days and groups last seen before
that; the hour and the day holding the cutoff are then rebuilt from what is left (`refill_cutoff`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connections, transaction

from telemetry.fingerprints import Fingerprint, Source, span_message
from telemetry.ingest.text import MemoCache
from telemetry.storage import TRACE_COLUMNS

GROUPS_TABLE = "telemetry_error_groups"
MINUTES_TABLE = "telemetry_error_group_minutes"
HOURS_TABLE = "telemetry_error_group_hours"
DAYS_TABLE = "telemetry_error_group_days"
MAX_ROUTES = 10
_fingerprints = MemoCache[tuple[str, str, str, str], Fingerprint](max_entries=4096)


def fingerprint_of(source: Source, service: str, event: str, message: str) -> Fingerprint:
    """`Fingerprint.of`, remembered: an error storm repeats a handful of texts."""
    return _fingerprints.get_or_compute((source.value, service, event, message), _compute)


def _compute(key: tuple[str, str, str, str]) -> Fingerprint:
    return Fingerprint.of(*key)


@dataclass(frozen=True)
class Occurrence:
    """One error as a group counts it."""

    fingerprint: Fingerprint
    ts: datetime
    event: str
    message: str
    trace_id: str | None = None
    route: str | None = None


@dataclass
class _Pending:
    fingerprint: Fingerprint
    first_seen: datetime
    newest: Occurrence
    routes: list[str] = field(default_factory=list)
    minutes: Counter = field(default_factory=Counter)


def log_occurrence(row: Mapping[str, Any]) -> Occurrence:
    """The occurrence of one ERROR log row as the receiver announces it (`telemetry.signals.error_logs_ingested`:
    ts as ISO text, service, event, message, trace_id; plus `route`, its http.route if any)."""
    ts = row["ts"]
    return Occurrence(
        fingerprint=fingerprint_of(Source.LOG, row["service"], row["event"], row["message"]),
        ts=datetime.fromisoformat(ts) if isinstance(ts, str) else ts,
        event=row["event"],
        message=row["message"],
        trace_id=row.get("trace_id"),
        route=row.get("route"),
    )


_TRACE_INDEX = {name: TRACE_COLUMNS.index(name) for name in
                ("id", "ts", "trace_id", "span_name", "route", "status_code", "service", "kept_reason")}


def span_occurrences(rows: Iterable[Sequence[Any]], inserted_ids: Iterable[Any], error_reason: str) -> list[Occurrence]:
    """The occurrences of the failed spans (kept_reason `error_reason`) among `rows` (value tuples in
    TRACE_COLUMNS order) that were inserted (`inserted_ids`); spans kept for being slow or sampled are no errors."""
    column = _TRACE_INDEX
    inserted = set(inserted_ids)
    found = []
    for row in rows:
        if row[column["kept_reason"]] != error_reason or row[column["id"]] not in inserted:
            continue
        span_name, message = row[column["span_name"]], span_message(row[column["status_code"]])
        found.append(Occurrence(
            fingerprint=fingerprint_of(Source.SPAN, row[column["service"]], span_name, message),
            ts=row[column["ts"]], event=span_name, message=message, trace_id=row[column["trace_id"]],
            route=row[column["route"]],
        ))
    return found


def record(occurrences: Iterable[Occurrence], using: str = "default") -> int:
    """Count `occurrences` into their groups, minutes, hours and days, in the caller's transaction; returns the groups
    touched."""
    pending: dict[int, _Pending] = {}
    for occurrence in occurrences:
        key = occurrence.fingerprint.as_int
        group = pending.get(key)
        if group is None:
            group = pending[key] = _Pending(occurrence.fingerprint, occurrence.ts, occurrence)
        else:
            group.first_seen = min(group.first_seen, occurrence.ts)
            if occurrence.ts >= group.newest.ts:
                group.newest = occurrence
        if occurrence.route and len(group.routes) < MAX_ROUTES and occurrence.route not in group.routes:
            group.routes.append(occurrence.route)
        group.minutes[_minute(occurrence.ts)] += 1
    if not pending:
        return 0
    groups = [pending[key] for key in sorted(pending)]
    minutes = sorted((key, minute, count) for key, group in pending.items() for minute, count in group.minutes.items())
    with connections[using].cursor() as cursor:
        cursor.executemany(_UPSERT_GROUP, [_group_params(group) for group in groups])
        cursor.execute(_UPSERT_MINUTES, [[minute for _, minute, _ in minutes], [key for key, _, _ in minutes],
                                         [count for _, _, count in minutes]])
    return len(groups)


def _minute(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def _group_params(group: _Pending) -> dict[str, Any]:
    fingerprint, newest = group.fingerprint, group.newest
    return {
        "fingerprint": fingerprint.as_int, "first_seen": group.first_seen, "last_seen": newest.ts,
        "source": fingerprint.source.value, "service": fingerprint.service,
        "event_template": fingerprint.event_template, "message_template": fingerprint.message_template,
        "example_event": newest.event, "example_message": newest.message, "example_trace_id": newest.trace_id,
        "routes": group.routes, "max_routes": MAX_ROUTES,
    }


# The example follows the newest occurrence; a request older than what is stored keeps the stored one.
_UPSERT_GROUP = f"""
INSERT INTO {GROUPS_TABLE} AS stored (fingerprint, first_seen, last_seen, source, service, event_template,
    message_template, example_event, example_message, example_trace_id, routes)
VALUES (%(fingerprint)s, %(first_seen)s, %(last_seen)s, %(source)s, %(service)s, %(event_template)s,
    %(message_template)s, %(example_event)s, %(example_message)s, %(example_trace_id)s, %(routes)s::text[])
ON CONFLICT (fingerprint) DO UPDATE SET
    first_seen = least(stored.first_seen, EXCLUDED.first_seen),
    last_seen = greatest(stored.last_seen, EXCLUDED.last_seen),
    example_event = CASE WHEN EXCLUDED.last_seen >= stored.last_seen THEN EXCLUDED.example_event
                         ELSE stored.example_event END,
    example_message = CASE WHEN EXCLUDED.last_seen >= stored.last_seen THEN EXCLUDED.example_message
                           ELSE stored.example_message END,
    example_trace_id = CASE WHEN EXCLUDED.last_seen >= stored.last_seen
                            THEN coalesce(EXCLUDED.example_trace_id, stored.example_trace_id)
                            ELSE coalesce(stored.example_trace_id, EXCLUDED.example_trace_id) END,
    routes = CASE WHEN cardinality(stored.routes) >= %(max_routes)s OR stored.routes @> EXCLUDED.routes
                  THEN stored.routes
                  ELSE ARRAY(SELECT route FROM unnest(stored.routes || EXCLUDED.routes) WITH ORDINALITY AS u(route, n)
                             GROUP BY route ORDER BY min(n) LIMIT %(max_routes)s) END
"""

# One statement for minutes, hours and days (one round trip). Every request runs this same statement, which takes the
# row locks of each table in key order (its rows are sorted), so two requests adding to the same rows queue
# instead of deadlocking; inside a transaction they already queue on the group rows locked just before.
_UPSERT_MINUTES = f"""
WITH added (ts, fingerprint, count) AS (SELECT * FROM unnest(%s::timestamptz[], %s::bigint[], %s::integer[])),
minutes AS (
    INSERT INTO {MINUTES_TABLE} AS stored (ts, fingerprint, count) SELECT ts, fingerprint, count FROM added
    ON CONFLICT (fingerprint, ts) DO UPDATE SET count = stored.count + EXCLUDED.count
),
hours AS (
    INSERT INTO {HOURS_TABLE} AS stored (hour, fingerprint, count)
    SELECT date_trunc('hour', ts, 'UTC'), fingerprint, sum(count)::integer FROM added GROUP BY 2, 1 ORDER BY 2, 1
    ON CONFLICT (fingerprint, hour) DO UPDATE SET count = stored.count + EXCLUDED.count
)
INSERT INTO {DAYS_TABLE} AS stored (day, fingerprint, count)
SELECT date_trunc('day', ts, 'UTC'), fingerprint, sum(count) FROM added GROUP BY 2, 1 ORDER BY 2, 1
ON CONFLICT (fingerprint, day) DO UPDATE SET count = stored.count + EXCLUDED.count
"""


def refill_cutoff(cutoff: datetime, using: str = "default") -> int:
    """Rebuild the hour rows of the hour holding `cutoff` from its minutes at or after it, then the day rows of
    the day holding it from its hours (retention has just deleted the minutes before the cutoff and the hour and
    day rows starting before it). Returns the rows written."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {HOURS_TABLE} AS stored (hour, fingerprint, count)
                SELECT date_trunc('hour', ts, 'UTC'), fingerprint, sum(count)::integer FROM {MINUTES_TABLE}
                WHERE ts >= %s AND ts < date_trunc('hour', %s::timestamptz, 'UTC') + interval '1 hour'
                GROUP BY 2, 1 ORDER BY 2, 1
                ON CONFLICT (fingerprint, hour) DO UPDATE SET count = EXCLUDED.count""",
            [cutoff, cutoff],
        )
        written = cursor.rowcount
        cursor.execute(
            f"""INSERT INTO {DAYS_TABLE} AS stored (day, fingerprint, count)
                SELECT date_trunc('day', hour, 'UTC'), fingerprint, sum(count) FROM {HOURS_TABLE}
                WHERE hour >= date_trunc('hour', %s::timestamptz, 'UTC')
                  AND hour < date_trunc('day', %s::timestamptz, 'UTC') + interval '1 day'
                GROUP BY 2, 1 ORDER BY 2, 1
                ON CONFLICT (fingerprint, day) DO UPDATE SET count = EXCLUDED.count""",
            [cutoff, cutoff],
        )
        return written + cursor.rowcount
