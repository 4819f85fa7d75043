"""Span breakdowns from the span aggregates (telemetry.span_aggregates), never from unpacked spans.

A window [start, end) counts the minutes that *start* in it, i.e. the spans of [ceil(start), ceil(end)) to the
minute: for windows whose ends are whole minutes that is exactly the spans the trace list shows for the same
window. Whole hours are read from the hourly table and the edges from the minute table, so the cost grows with
the hours of the window, not with its spans.

Counts are exact. Percentiles come from the buckets (`span_aggregates.BOUNDS_MS`, interpolated inside the bucket
holding the rank as `telemetry.histograms.quantile` does): the answer lies in the same bucket as the exact
percentile of the spans' whole-millisecond durations, so it is off by at most that bucket's width (e.g. 150-200
ms: 50 ms, 1-1.5 s: 500 ms), and above 10 s it says 10 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connections

from kaiku_ops.db_routers import read_alias
from telemetry import histograms
from telemetry.span_aggregates import BOUNDS_MS, HOURS_TABLE, MINUTES_TABLE, NO_ROUTE

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Durations:
    """Spans and their duration buckets (ms; `span_aggregates.BOUNDS_MS`, the last one +Inf)."""

    spans: int
    errors: int
    buckets: tuple[int, ...]

    def quantile_ms(self, q: float) -> float | None:
        return histograms.quantile(BOUNDS_MS, self.buckets, q) if self.spans else None


@dataclass(frozen=True)
class RouteErrors(Durations):
    route: str


@dataclass(frozen=True)
class HourDurations(Durations):
    hour: datetime


@dataclass(frozen=True)
class _Parts:
    """A window as SQL over both tables: whole hours [hours_from, hours_to) and edge minutes."""

    hours_from: datetime
    hours_to: datetime
    minutes_from: datetime
    minutes_to: datetime


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    seconds = unit.total_seconds()
    epoch = moment.astimezone(UTC).timestamp()
    whole = -(-epoch // seconds) * seconds
    return datetime.fromtimestamp(whole, UTC)


def _floor(moment: datetime, unit: timedelta) -> datetime:
    seconds = unit.total_seconds()
    return datetime.fromtimestamp(moment.astimezone(UTC).timestamp() // seconds * seconds, UTC)


def _parts(start: datetime, end: datetime) -> _Parts:
    first, last = _ceil(start, _MINUTE), _ceil(end, _MINUTE)
    hours_from, hours_to = _ceil(first, _HOUR), _floor(last, _HOUR)
    if hours_from >= hours_to:  # no whole hour: everything from the minutes
        hours_from = hours_to = first
    return _Parts(hours_from, hours_to, first, last)


def _rows_sql(columns: str, condition: str) -> str:
    """SQL of the aggregate rows making up a window (`columns` over a row; `t.time` is its hour or minute),
    with the named parameters of `_Parts`."""
    return f"""SELECT {columns.replace("t.time", "hour")} FROM {HOURS_TABLE}
            WHERE hour >= %(hours_from)s AND hour < %(hours_to)s AND {condition}
            UNION ALL
            SELECT {columns.replace("t.time", "ts")} FROM {MINUTES_TABLE}
            WHERE ((ts >= %(minutes_from)s AND ts < %(hours_from)s) OR (ts >= %(hours_to)s AND ts < %(minutes_to)s))
              AND {condition}"""


def _fetch(sql: str, parts: _Parts, params: dict) -> list[tuple]:
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(sql, {**vars(parts), **params})
        return cursor.fetchall()


def errors_by_route(start: datetime, end: datetime, limit: int = 10) -> list[RouteErrors]:
    """The routes with the most error spans in the window, most first (ties by route), with all their kept
    spans and duration buckets; spans without a route are left out."""
    rows_sql = _rows_sql("route, spans, errors, buckets", "route <> %(no_route)s")
    rows = _fetch(
        f"""SELECT route, sum(spans), sum(errors), telemetry_bucket_sum(buckets::bigint[])
            FROM ({rows_sql}) AS r GROUP BY route HAVING sum(errors) > 0
            ORDER BY 3 DESC, 1 LIMIT %(limit)s""",
        _parts(start, end),
        {"no_route": NO_ROUTE, "limit": limit},
    )
    return [RouteErrors(int(spans), int(errors), tuple(buckets), route) for route, spans, errors, buckets in rows]


def durations_by_hour(
    start: datetime,
    end: datetime,
    service: str | None = None,
    domain: str | None = None,
    route: str | None = None,
) -> list[HourDurations]:
    """Kept spans per UTC hour of the window (hours without spans left out), oldest first; each filter given
    keeps only the spans with that service, domain or route."""
    conditions, params = [], {}
    for column, value in (("service", service), ("domain", domain), ("route", route)):
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    rows_sql = _rows_sql("t.time AS time, spans, errors, buckets", " AND ".join(conditions) or "true")
    rows = _fetch(
        f"""SELECT date_trunc('hour', time, 'UTC'), sum(spans), sum(errors), telemetry_bucket_sum(buckets::bigint[])
            FROM ({rows_sql}) AS r GROUP BY 1 ORDER BY 1""",
        _parts(start, end),
        params,
    )
    return [HourDurations(int(spans), int(errors), tuple(buckets), hour) for hour, spans, errors, buckets in rows]
