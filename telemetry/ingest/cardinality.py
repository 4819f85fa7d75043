"""The cardinality budget (contract section 4): at most CARDINALITY_BUDGET label sets per metric over
the retention window (`telemetry_series` rows). A new label set beyond it is folded into the overflow
set, and one WARN event per metric per hour says so.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from datetime import timedelta

from django.db import connections, transaction
from psycopg.types.json import Jsonb

from telemetry.contract import CARDINALITY_BUDGET, OVERFLOW_LABELS, Event, LogLevel
from telemetry.ingest.outcome import TimeWindow, from_unix_nanos
from telemetry.ingest.points import MetricPoint
from telemetry.models import Series
from telemetry.packing import LOG_VIEW
from telemetry.storage import deterministic_uuid, insert_log_events

SELF_SERVICE = "kaiku_ops"
SELF_DOMAIN = "telemetry"
_NANOS_PER_HOUR = 3_600_000_000_000
# last_seen only needs hour precision against a 30-day window; writing it once an hour per label set
# (and remembering that per process) keeps the series table off the hot path.
_TOUCH_EVERY_NS = _NANOS_PER_HOUR
_OVERFLOW_KEY = json.dumps(OVERFLOW_LABELS, sort_keys=True)

SeriesKey = tuple[str, str]  # (metric, labels as sorted JSON)

_last_touched: dict[SeriesKey, int] = {}
_last_touched_lock = threading.Lock()


def forget_known_series() -> None:
    """Drop this process's memory of recently seen label sets (tests that empty the tables use it)."""
    with _last_touched_lock:
        _last_touched.clear()


def overflow_message(metric: str) -> str:
    return (f"metric {metric} exceeded its cardinality budget of {CARDINALITY_BUDGET} label sets; "
            f"new label sets are folded into {_OVERFLOW_KEY}")


def fold_over_budget(points: list[MetricPoint], window: TimeWindow, using: str = "default") -> None:
    """Record the label sets of `points` as series; points with a label set over budget get the
    overflow labels instead (in place). Runs inside the caller's transaction."""
    latest: dict[SeriesKey, int] = {}
    for point in points:
        key = (point.metric, json.dumps(point.labels, sort_keys=True))
        latest[key] = max(latest.get(key, 0), point.time_ns)
    with _last_touched_lock:
        unsure = {key: time_ns for key, time_ns in latest.items()
                  if time_ns >= _last_touched.get(key, -_TOUCH_EVERY_NS) + _TOUCH_EVERY_NS}
    if not unsure:
        return
    by_metric: dict[str, list[SeriesKey]] = defaultdict(list)
    for key in sorted(unsure):
        by_metric[key[0]].append(key)
    folded: set[SeriesKey] = set()
    with connections[using].cursor() as cursor:
        for metric, keys in by_metric.items():
            folded.update(_admit(cursor, metric, keys, window))
        overflow_times: dict[str, int] = {}
        for point in points:
            key = (point.metric, json.dumps(point.labels, sort_keys=True))
            if key in folded:
                point.labels = dict(OVERFLOW_LABELS)
                first = overflow_times.get(point.metric, point.time_ns)
                overflow_times[point.metric] = min(first, point.time_ns)
        touched = {key: time_ns for key, time_ns in unsure.items() if key not in folded}
        for metric, time_ns in overflow_times.items():
            touched[(metric, _OVERFLOW_KEY)] = max(touched.get((metric, _OVERFLOW_KEY), 0), time_ns)
            _record_overflow(cursor, metric, time_ns, using)
        _touch(cursor, touched)
    transaction.on_commit(lambda: _remember(touched), using=using)


def _admit(cursor, metric: str, keys: list[SeriesKey], window: TimeWindow) -> list[SeriesKey]:
    """The keys (of one metric, sorted) that do not fit in its budget."""
    # Serialise admissions per metric: two processes must not both take the last free place.
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext('telemetry.series'), hashtext(%s))", [metric])
    oldest = from_unix_nanos(window.oldest_ns)
    cursor.execute(
        """SELECT labels FROM telemetry_series
           WHERE metric_name = %s AND labels = ANY(%s::jsonb[]) AND last_seen >= %s""",
        [metric, [Jsonb(json.loads(labels)) for _, labels in keys], oldest],
    )
    # Django's connections read jsonb as text; re-serialise it the way our keys are spelled.
    current = {json.dumps(json.loads(labels), sort_keys=True) for (labels,) in cursor.fetchall()}
    new = [key for key in keys if key[1] not in current and key[1] != _OVERFLOW_KEY]
    if not new:
        return []
    cursor.execute(
        f"SELECT count(*) FROM {Series._meta.db_table}"
        " WHERE metric_name = %s AND last_seen >= %s AND labels <> %s",
        [metric, oldest, Jsonb(OVERFLOW_LABELS)],
    )
    room = max(CARDINALITY_BUDGET - cursor.fetchone()[0], 0)
    return new[room:]


def _touch(cursor, touched: dict[SeriesKey, int]) -> None:
    keys = sorted(touched)
    seen = [from_unix_nanos(touched[key]) for key in keys]
    cursor.execute(
        """INSERT INTO telemetry_series (metric_name, labels, first_seen, last_seen)
           SELECT metric, labels, seen, seen FROM unnest(%s::text[], %s::jsonb[], %s::timestamptz[])
               AS touched(metric, labels, seen)
           ON CONFLICT (metric_name, labels)
           DO UPDATE SET last_seen = greatest(telemetry_series.last_seen, EXCLUDED.last_seen)""",
        [[metric for metric, _ in keys], [Jsonb(json.loads(labels)) for _, labels in keys], seen],
    )


def _record_overflow(cursor, metric: str, time_ns: int, using: str) -> None:
    """One WARN event per metric per hour (the caller holds the metric's admission lock)."""
    hour = from_unix_nanos(time_ns - time_ns % _NANOS_PER_HOUR)
    message = overflow_message(metric)
    cursor.execute(  # the hour may be packed already (a late point): read hot and packed rows
        f"""SELECT EXISTS (SELECT 1 FROM {LOG_VIEW}
                           WHERE ts >= %(hour)s AND ts < %(end)s AND chunk_first_ts >= %(hour)s
                             AND chunk_first_ts < %(end)s AND event = %(event)s AND domain = %(domain)s
                             AND message = %(message)s)""",
        {"hour": hour, "end": hour + timedelta(hours=1), "event": Event.CARDINALITY_OVERFLOW.value,
         "domain": SELF_DOMAIN, "message": message},
    )
    if cursor.fetchone()[0]:
        return
    insert_log_events([{
        "id": deterministic_uuid(Event.CARDINALITY_OVERFLOW, metric, hour.isoformat()),
        "ts": from_unix_nanos(time_ns),
        "level": LogLevel.WARN.value,
        "service": SELF_SERVICE,
        "domain": SELF_DOMAIN,
        "event": Event.CARDINALITY_OVERFLOW.value,
        "message": message,
        "trace_id": None,
        "span_id": None,
        "attrs": {},
    }], using=using)


def _remember(touched: dict[SeriesKey, int]) -> None:
    with _last_touched_lock:
        for key, time_ns in touched.items():
            _last_touched[key] = max(_last_touched.get(key, 0), time_ns)
