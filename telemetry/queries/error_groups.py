"""Error groups as ingest counted them (telemetry.error_groups): the only reader of their tables.

- `groups_in_window`: every group with errors in a window, with its count there (minute rows whose minute
  starts in the window) and what the group table knows of it;
- `bucket_counts`: the errors of some groups per time bucket (a rate sparkline);
- `ranked_groups`: the first groups of a window by a `Ranking` (new ones first), with totals and their
  sparklines, in one statement (the Errors tab and the incident report);
- `group_of_log`: the group key of a log record (None for WARN), for lists and the live feed;
- `logs_of_group`: narrows a `records.logs` queryset to the ERROR records of one group, in SQL with the very
  rules of `telemetry.fingerprints` (its template rules, applied by PostgreSQL's regexp_replace).

Counts read three tiers (`tiers`): for a listing the day rows of the UTC days lying whole in the window, the hour
rows of the other whole hours, the minute rows of its ragged ends; for sparklines hour and minute rows (and the
minutes of an hour outside its main bucket). A day row is the sum of its hour rows, an hour row the sum of its
minute rows (ingest writes all three in one statement), so the answer is the one the minute rows alone would
give: a 7-day listing reads ~30 rows per group instead of ~10,000.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.db import connections
from django.db.models import F, Func, QuerySet, TextField, Value
from django.db.models.lookups import Exact

from kaiku_ops.db_routers import read_alias
from telemetry.contract import LogLevel
from telemetry.error_groups import DAYS_TABLE, GROUPS_TABLE, HOURS_TABLE, MINUTES_TABLE, fingerprint_of
from telemetry.fingerprints import TEMPLATE_RULES, Source, fingerprint_hex, fingerprint_int

_PLACEHOLDERS = tuple(placeholder for _, placeholder in TEMPLATE_RULES)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


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
    where, params = _group_conditions(service, search)
    counted, count_params = _tiered_rows(tiers(start, end))
    rows = _fetch(
        f"""SELECT {_GROUP_COLUMNS}, c.count
            FROM (SELECT fingerprint, sum(count)::bigint AS count FROM ({counted}) AS rows
                  GROUP BY fingerprint) AS c
            JOIN {GROUPS_TABLE} AS g USING (fingerprint)
            {where}
            ORDER BY c.count DESC, g.last_seen DESC""",
        count_params + params,
    )
    return [_group_count(row) for row in rows]


_GROUP_COLUMNS = """g.fingerprint, g.source, g.service, g.event_template, g.message_template, g.example_event,
                   g.example_message, g.example_trace_id, g.routes, g.first_seen, g.last_seen"""


def _group_count(row: Sequence) -> GroupCount:
    """A GroupCount from a row of _GROUP_COLUMNS and the count."""
    return GroupCount(fingerprint_hex(row[0]), *row[1:8], tuple(row[8]), *row[9:12])


def _group_conditions(service: str | None, search: str | None) -> tuple[str, list]:
    conditions, params = [], []
    if service:
        conditions.append("g.service = %s")
        params.append(service)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append("(g.event_template ILIKE %s OR g.message_template ILIKE %s OR g.example_event ILIKE %s"
                          " OR g.example_message ILIKE %s)")
        params += [pattern] * 4
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params


@dataclass(frozen=True)
class Ranking:
    """How `ranked_groups` orders the groups of a window: new ones first, then the most errors in the window, then
    the most recently seen. A group is new when first seen at or after `new_since`, or at or after its service's
    latest deploy (`deployed_at`, by service name); `new_only` keeps only the new ones."""

    new_since: datetime
    deployed_at: Mapping[str, datetime] = field(default_factory=dict)
    new_only: bool = False


@dataclass(frozen=True)
class RankedGroups:
    """The first groups of a ranking, how many groups it ranked in all and how many of those are new, and each
    shown group's errors per bucket (`bucket_counts`, by group key; empty when no sparkline was asked for)."""

    groups: list[GroupCount]
    total: int
    new_total: int
    sparklines: dict[str, list[int]]


def ranked_groups(start: datetime, end: datetime, limit: int, ranking: Ranking, service: str | None = None,
                  search: str | None = None, step_seconds: int | None = None) -> RankedGroups:
    """The groups of `groups_in_window` ranked by `ranking`, the first `limit` of them, and with `step_seconds` their
    `bucket_counts` too. One statement: the counting, the ranking and the shown groups' sparklines run where the
    rows are, and only the shown groups come back (not every group of the window, then a second query)."""
    where, params = _group_conditions(service, search)
    counted, count_params = _tiered_rows(tiers(start, end))
    services = sorted(ranking.deployed_at)
    buckets = max(1, -(-int((end - start).total_seconds()) // step_seconds)) if step_seconds else 0
    sparkline_sql = "SELECT NULL::bigint AS fingerprint, NULL::integer[] AS buckets, NULL::bigint[] AS counts LIMIT 0"
    sparkline_params: list = []
    if step_seconds:
        rows_sql, rows_params = _tiered_rows(tiers(start, end, step_seconds), ("SELECT fingerprint FROM shown", []))
        sparkline_sql = f"""SELECT fingerprint, array_agg((extract(epoch FROM bucket - %s) / %s)::integer) AS buckets,
                                   array_agg(count) AS counts
                            FROM (SELECT fingerprint, date_bin(%s, ts, %s) AS bucket, sum(count)::bigint AS count
                                  FROM ({rows_sql}) AS rows GROUP BY 1, 2) AS per_bucket
                            GROUP BY fingerprint"""
        sparkline_params = [start, step_seconds, timedelta(seconds=step_seconds), start, *rows_params]
    rows = _fetch(
        f"""WITH listed AS (
                SELECT {_GROUP_COLUMNS}, c.count,
                       coalesce(g.first_seen >= %s OR g.first_seen >= d.deployed_at, false) AS new
                FROM (SELECT fingerprint, sum(count)::bigint AS count FROM ({counted}) AS rows
                      GROUP BY fingerprint) AS c
                JOIN {GROUPS_TABLE} AS g USING (fingerprint)
                LEFT JOIN unnest(%s::text[], %s::timestamptz[]) AS d(service, deployed_at) ON d.service = g.service
                {where}),
            shown AS MATERIALIZED (
                SELECT *, count(*) OVER () AS total, count(*) FILTER (WHERE new) OVER () AS new_total
                FROM listed {"WHERE new" if ranking.new_only else ""}
                ORDER BY new DESC, count DESC, last_seen DESC, fingerprint
                LIMIT %s)
            SELECT s.fingerprint, s.source, s.service, s.event_template, s.message_template, s.example_event,
                   s.example_message, s.example_trace_id, s.routes, s.first_seen, s.last_seen, s.count,
                   s.total, s.new_total, b.buckets, b.counts
            FROM shown AS s LEFT JOIN ({sparkline_sql}) AS b USING (fingerprint)
            ORDER BY s.new DESC, s.count DESC, s.last_seen DESC, s.fingerprint""",
        [ranking.new_since, *count_params, services, [ranking.deployed_at[name] for name in services], *params, limit,
         *sparkline_params],
    )
    groups = [_group_count(row) for row in rows]
    sparklines = {}
    for group, row in zip(groups, rows, strict=True):
        sparklines[group.group] = line = [0] * buckets
        for bucket, count in zip(row[14] or (), row[15] or (), strict=True):
            line[bucket] = count
    total, new_total = (rows[0][12], rows[0][13]) if rows else (0, 0)
    return RankedGroups(groups, total, new_total, sparklines if step_seconds else {})


def bucket_counts(groups: Sequence[str], start: datetime, end: datetime, step_seconds: int) -> dict[str, list[int]]:
    """Errors of each group (16-hex keys) per bucket of `step_seconds` from `start` (bucket i holds the minutes
    starting in [start + i·step, start + (i+1)·step)), zeros included."""
    buckets = max(1, -(-int((end - start).total_seconds()) // step_seconds))
    counts = {group: [0] * buckets for group in groups}
    if not groups:
        return counts
    counted, params = _tiered_rows(tiers(start, end, step_seconds), ("SELECT unnest(%s::bigint[]) AS fingerprint",
                                                                     [[fingerprint_int(group) for group in groups]]))
    step = timedelta(seconds=step_seconds)
    rows = _fetch(  # every row is dated inside the bucket it counts in; the bucket's number comes back, not its time
        f"""SELECT fingerprint, (extract(epoch FROM bucket - %s) / %s)::integer, count
            FROM (SELECT fingerprint, date_bin(%s, ts, %s) AS bucket, sum(count)::bigint AS count
                  FROM ({counted}) AS rows GROUP BY 1, 2) AS buckets""",
        [start, step_seconds, step, start, *params],
    )
    for fingerprint, bucket, count in rows:
        counts[fingerprint_hex(fingerprint)][bucket] = count
    return counts


@dataclass(frozen=True)
class Span:
    """[low, high). For minute rows: their errors are counted at `low` and, with `at`, taken back out at `at`.
    `sign` -1: the span's errors are subtracted (a listing's day row read whole, less its part outside the window)."""

    low: datetime
    high: datetime
    at: datetime | None = None
    sign: int = 1


@dataclass(frozen=True)
class Tiers:
    """Where the counts of [start, end) come from: the hour rows of `hours` (each counted at its hour's middle),
    the minute rows of `minutes`, the day rows of `days` (each counted at its day's middle); together they count
    every minute of the window once."""

    hours: list[Span]
    minutes: list[Span]
    days: list[Span] = field(default_factory=list)


def tiers(start: datetime, end: datetime, step_seconds: int | None = None) -> Tiers:
    """Split [start, end) into the whole UTC hours read from hour rows and the ragged ends read from minute rows.

    With `step_seconds` (buckets of that width from `start`) an hour row counts in the bucket holding the hour's
    middle. When its minutes fall in several buckets, those outside that bucket are read too (every minute span
    lies in one bucket): added to their own bucket and taken back out of the middle's. Per-bucket sums stay
    what the minutes alone give. An hour is read so when at least half of it lies in the middle's bucket,
    else from its minutes."""
    step = timedelta(seconds=step_seconds) if step_seconds else None

    def bucket(moment: datetime) -> int:
        return (moment - start) // step if step else 0

    def cut(low: datetime, high: datetime) -> list[tuple[datetime, datetime]]:
        cuts = [low]
        if step:
            boundary = start + (bucket(low) + 1) * step
            while boundary < high:
                cuts.append(boundary)
                boundary += step
        return list(pairwise([*cuts, high])) if low < high else []

    def read_hours(low: datetime, high: datetime) -> None:
        minutes.extend(Span(*part) for part in cut(cursor, low))
        if hours and hours[-1].high == low:
            hours[-1] = Span(hours[-1].low, high)
        else:
            hours.append(Span(low, high))

    hours: list[Span] = []
    minutes: list[Span] = []
    cursor = start
    hour = _hour_of(start)
    hour += HOUR if hour < start else timedelta(0)
    whole_end = _hour_of(end)  # the hours from `hour` up to here lie whole in the window
    # Hours a bucket boundary falls inside; a run of hours between them is one span of hour rows (a 7-day window
    # has ~30 such hours among its 168: the split costs per boundary, not per hour).
    cut_hours = sorted({_hour_of(boundary) for boundary in _boundaries(start, end, step)}) if step else []
    while hour < whole_end:
        following = min(next((cut_hour for cut_hour in cut_hours if cut_hour >= hour), whole_end), whole_end)
        if following > hour:
            read_hours(hour, following)
            cursor = hour = following
            continue
        middle = hour + HOUR / 2
        parts = cut(hour, hour + HOUR)
        main = next(part for part in parts if part[0] <= middle < part[1])
        if 2 * (main[1] - main[0]) >= HOUR:
            read_hours(hour, hour + HOUR)
            minutes += [Span(low, high, middle) for low, high in parts if (low, high) != main]
            cursor = hour + HOUR
        hour += HOUR
    minutes += [Span(low, high) for low, high in cut(cursor, end)]
    if step is None:
        return _days_of(Tiers(hours, minutes), start, end)
    return Tiers(hours, minutes)


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _boundaries(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    """The bucket boundaries strictly inside [start, end) that do not fall on an hour's start."""
    boundary = start + step
    while boundary < end:
        if boundary != _hour_of(boundary):
            yield boundary
        boundary += step


def _days_of(split: Tiers, start: datetime, end: datetime) -> Tiers:
    """`split` (a listing's: its whole hours are one span) with whole UTC days read from day rows (a listing only:
    a day row counts at its day's middle, which no sparkline bucket needs).

    A day the window cuts is read as its day row less the part outside the window when that part has fewer hours
    than the part inside: the last day of a window ending now is one day row less the hours still to come (none
    stored) instead of up to 23 hour rows per group."""
    if len(split.hours) != 1:
        return split
    (whole,) = split.hours
    first = _hour_of(whole.low).replace(hour=0)
    first += DAY if first < whole.low else timedelta(0)  # the first midnight among the whole hours
    last = _hour_of(whole.high).replace(hour=0)  # the last one
    if first > last:
        return split
    days, hours, minutes = [Span(first, last)], [], []
    head_day, outside_from = first - DAY, _hour_of(start)
    if outside_from - head_day < first - whole.low:  # the day before `first`, less its hours before the window
        days.insert(0, Span(head_day, first))
        hours.append(Span(head_day, outside_from, sign=-1))
        minutes.append(Span(outside_from, start, sign=-1))
    else:
        hours.append(Span(whole.low, first))
        minutes.append(Span(start, whole.low))
    outside_from = whole.high + (HOUR if whole.high < end else timedelta(0))
    if last + DAY - outside_from < whole.high - last:  # the day from `last`, less its hours after the window
        days.append(Span(last, last + DAY))
        hours.append(Span(outside_from, last + DAY, sign=-1))
        minutes.append(Span(end, outside_from, sign=-1))
    else:
        hours.append(Span(last, whole.high))
        minutes.append(Span(whole.high, end))
    merged: list[Span] = []
    for day in days:
        if merged and merged[-1].high == day.low:
            merged[-1] = Span(merged[-1].low, day.high)
        elif day.low < day.high:
            merged.append(day)
    return Tiers([span for span in hours if span.low < span.high], [span for span in minutes if span.low < span.high],
                 merged)


def _tiered_rows(split: Tiers, groups: tuple[str, list] | None = None) -> tuple[str, list]:
    """SQL of (ts, fingerprint, count) rows: day and hour rows dated by their day's or hour's middle, and each
    minute span's errors per group dated by the span (and, for a span with `at`, taken back at `at`). Each span
    (of each group of `groups`, when given: SQL selecting a `fingerprint` column, and its parameters) is read by one
    index range scan."""
    join, condition, any_condition, group_params = "", "", "", []
    if groups is not None:
        # Day and hour rows: one range scan per group on the (fingerprint, time) keys, a few groups' rows rather
        # than every group's filtered (index-only on the hour key, which carries the count: migration 0020).
        # Minute spans are short: one range scan on time, filtered, is cheaper (measured: 3.1-3.3 against
        # 4.2-4.5 ms for 20 groups and the 31 cut hours of 7 days).
        groups_sql, group_params = groups
        join, condition = f" CROSS JOIN ({groups_sql}) AS f", "fingerprint = f.fingerprint AND "
        any_condition = f"fingerprint IN ({groups_sql}) AND "

    def spans(spans: list[Span]) -> list:
        return [[span.low for span in spans], [span.high for span in spans], [span.at for span in spans],
                [span.sign for span in spans], *group_params]

    # OFFSET 0 keeps each span's subquery whole: one range scan per span. Joined flat, the planner cannot
    # estimate the ranges and may read every row of the groups (30 days) and filter them instead.
    return (f"""SELECT t.day + interval '12 hours' AS ts, t.fingerprint, s.sign * t.count AS count
                FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::integer[])
                     AS s(low, high, at, sign){join}
                CROSS JOIN LATERAL (SELECT day, fingerprint, count FROM {DAYS_TABLE}
                                    WHERE {condition}day >= s.low AND day < s.high OFFSET 0) AS t
                UNION ALL
                SELECT t.hour + interval '30 minutes' AS ts, t.fingerprint, s.sign * t.count AS count
                FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::integer[])
                     AS s(low, high, at, sign){join}
                CROSS JOIN LATERAL (SELECT hour, fingerprint, count FROM {HOURS_TABLE}
                                    WHERE {condition}hour >= s.low AND hour < s.high OFFSET 0) AS t
                UNION ALL
                SELECT v.ts, t.fingerprint, v.count
                FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::integer[])
                     AS s(low, high, at, sign)
                CROSS JOIN LATERAL (SELECT fingerprint, sum(count) AS count FROM {MINUTES_TABLE}
                                    WHERE {any_condition}ts >= s.low AND ts < s.high GROUP BY fingerprint) AS t
                CROSS JOIN LATERAL (VALUES (s.low, s.sign * t.count), (s.at, -t.count)) AS v(ts, count)
                WHERE v.ts IS NOT NULL""", spans(split.days) + spans(split.hours) + spans(split.minutes))


def _fetch(sql: str, params: Sequence) -> list[tuple]:
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


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
