"""Metric aggregates over windows: the only reader of the metric tiers (minute table, per-label samples,
hourly rollup).

Counters add up their increases, gauges average their minute values, histograms merge bucket counts
(`telemetry_bucket_sum` in SQL, then `telemetry.histograms.merge` across different bucket layouts) so
percentiles over any window come from merged buckets, never from averaged stored percentiles.

Long windows read complete hours from the hourly rollup table and only the edges (before the first whole
hour, and after the last refresh of the rollup) from the minute samples; see `_split`. Wherever no label
grouping is asked for (or only the split the minute table keeps, telemetry/minutes.py), "the samples" means
the minute table `telemetry_metric_minutes`: the same sums with all label sets merged per minute, about a
hundredth of the rows at `heavy`. Per-label reads of minutes older than the sample horizon
(`settings.TELEMETRY_SAMPLE_RETENTION_DAYS`, after which retention drops per-label samples) come from the
hourly rollup, at hour resolution; see `_sources`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

from kaiku_ops.db_routers import read_alias
from telemetry import histograms
from telemetry.contract import CATALOGUE, RETENTION_DAYS, SCOPE_CLUSTER, Kind
from telemetry.jobs import Job, last_run
from telemetry.minutes import KEYS_TABLE, MINUTES_TABLE, SPLITS
from telemetry.models import MetricSample, Series
from telemetry.rollups import HOURLY_TABLE

HOUR = timedelta(hours=1)
# Samples of a minute can still be merged a little after the minute ends (ingest flush lag); hours this
# close to a rollup refresh are read from the samples instead of the possibly incomplete rollup table.
ROLLUP_SAFETY = timedelta(minutes=5)
BIN_ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
GROUP_SEPARATOR = "\x1f"
# Bucket positions summed in one pass; wider histograms (exponential ones) trigger a second, wider query.
BUCKET_WIDTH = 16


@dataclass(frozen=True)
class LabelMatch:
    """Restricts rows to a label value (`value`), a value prefix (`prefix`, e.g. "5" for 5xx) or one of
    several values (`values`)."""

    label: str
    value: str | None = None
    prefix: str | None = None
    values: tuple[str, ...] | None = None

    def sql(self) -> tuple[str, list]:
        if self.prefix is not None:
            return "AND left(labels ->> %s, %s) = %s", [self.label, len(self.prefix), self.prefix]
        if self.values is not None:
            return "AND labels ->> %s = ANY(%s)", [self.label, list(self.values)]
        return "AND labels ->> %s = %s", [self.label, self.value]

    def split_sql(self, metric: str) -> tuple[str, list] | None:
        """The same restriction on the minute table's `split` column; None when the split cannot express it."""
        split = SPLITS.get(metric)
        if split is None or split.label != self.label or self.values is not None:
            return None
        if self.prefix is not None:
            return ("AND split = %s", [self.prefix]) if split.serves_prefix(self.prefix) else None
        return ("AND split = %s", [self.value]) if split.serves_value() and self.value is not None else None


@dataclass
class Agg:
    """What a group of samples adds up to; read the field that fits the metric's kind."""

    total: float = 0.0  # counters: increase
    gauge_sum: float = 0.0  # gauges: sum of minute values ...
    gauge_n: int = 0  # ... and how many there were
    bounds: list[float] | None = None  # histograms: merged buckets
    counts: list[int] | None = None
    last_epoch: float | None = None  # newest sample, Unix seconds (cheaper to fetch than timestamptz)
    rows: int = field(default=0)

    @property
    def mean(self) -> float | None:
        return self.gauge_sum / self.gauge_n if self.gauge_n else None

    def quantile(self, q: float) -> float | None:
        if self.counts is None or self.bounds is None:
            return None
        return histograms.quantile(self.bounds, self.counts, q)

    def add_buckets(self, bounds: list[float], counts: list[int]) -> None:
        if self.counts is None:
            self.bounds, self.counts = [float(b) for b in bounds], [int(c) for c in counts]
        else:
            self.bounds, self.counts = histograms.merge(self.bounds, self.counts, bounds, counts)


# (bin start in Unix seconds or None, label value or None); see `bin_key`.
Key = tuple[int | None, str | None]


def _rollup_complete_until(using: str) -> datetime | None:
    """Start of the first hour the hourly rollup may not hold completely (None: never refreshed)."""
    run = last_run(Job.REFRESH_ROLLUPS, using=using)
    if run is None or not run.ok:
        return None
    safe = run.started_at - ROLLUP_SAFETY
    return safe.replace(minute=0, second=0, microsecond=0)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def sample_horizon(now: datetime | None = None) -> datetime | None:
    """The first whole hour from which per-label samples are certainly kept; None when they are kept as long
    as everything else."""
    days = settings.TELEMETRY_SAMPLE_RETENTION_DAYS
    if days >= RETENTION_DAYS:
        return None
    return _ceil_hour((now or timezone.now()) - timedelta(days=days))


def _split(
    start: datetime, end: datetime, use_rollup: bool, using: str
) -> list[tuple[str, datetime, datetime]]:
    """[(source, from, to)] covering [start, end): the rollup for whole refreshed hours, samples elsewhere."""
    first_hour = _ceil_hour(start)
    if first_hour + HOUR > end:  # no whole hour inside: spare the look-up of the last refresh
        return [("samples", start, end)]
    complete_until = _rollup_complete_until(using) if use_rollup else None
    rollup_end = (
        min(complete_until, end.replace(minute=0, second=0, microsecond=0)) if complete_until else None
    )
    if rollup_end is None or rollup_end <= first_hour:
        return [("samples", start, end)]
    parts = [("rollup", first_hour, rollup_end), ("samples", rollup_end, end)]
    if start < first_hour:
        parts.insert(0, ("samples", start, first_hour))
    return [part for part in parts if part[1] < part[2]]


def _sources(
    start: datetime, end: datetime, use_rollup: bool, using: str, minutes_serve: bool
) -> list[tuple[str, datetime, datetime]]:
    """`_split`, with its sample parts read from the minute table when it can answer (`minutes_serve`), else
    from the samples after the sample horizon and from the hourly rollup before it (whole hours: an hour cut
    by the window's start counts whole)."""
    horizon = sample_horizon()
    parts = []
    for source, part_start, part_end in _split(start, end, use_rollup, using):
        if source != "samples":
            parts.append((source, part_start, part_end))
        elif minutes_serve:
            parts.append(("minutes", part_start, part_end))
        elif horizon is None or part_start >= horizon:
            parts.append((source, part_start, part_end))
        else:
            parts.append(("rollup", part_start, min(part_end, horizon)))
            if horizon < part_end:
                parts.append((source, horizon, part_end))
    return parts


@dataclass(frozen=True)
class _Source:
    """Where a part of a window is read from, and how its columns add up."""

    table: str
    ts: str
    total: str  # counter total
    n: str  # gauge observation count
    vsum: str  # gauge sum
    newest: str  # newest sample time
    rows: str  # row count
    bounds: str = "bucket_bounds"
    count_at: str = "bucket_counts[{i}]"  # bucket count at position i
    width: str = "cardinality(bucket_counts)"
    key_filter: str = ""  # more SQL after "metric_name = %s AND scope = %s", taking the same two arguments


# Repeats the key condition as a list of key ids: with the join alone the planner estimates a whole day of one
# metric's minutes too high and scans the day's partition (16 ms) instead of the (key_id, ts) index (5 ms).
_MINUTE_KEYS_SQL = (f"AND key_id = ANY(ARRAY(SELECT id FROM {KEYS_TABLE} AS wanted"
                    " WHERE wanted.metric_name = %s AND wanted.scope = %s))")

_SOURCES = {
    "samples": _Source(
        MetricSample._meta.db_table, "ts", "coalesce(value_sum, value_count)", "1", "value_sum", "ts", "count(*)"
    ),
    "minutes": _Source(
        # The key carries metric_name, scope, split and bounds (telemetry/minutes.py); no column name is shared.
        f"{MINUTES_TABLE} JOIN {KEYS_TABLE} ON {KEYS_TABLE}.id = key_id",
        "ts", "total", "sample_rows", "value_sum", "ts", "sum(sample_rows)",
        bounds="bounds",
        # Counts sit in the int4 column unless one did not fit; sum() of int4 is bigint.
        count_at="coalesce(bucket_counts[{i}], bucket_counts_wide[{i}])",
        width="greatest(cardinality(bucket_counts), cardinality(bucket_counts_wide))",
        key_filter=_MINUTE_KEYS_SQL,
    ),
    "rollup": _Source(
        HOURLY_TABLE,
        "hour",
        "coalesce(total_sum, total_count)",
        "sample_count",
        "total_sum",
        "last_ts",
        "count(*)",
    ),
}


def _bucket_sums_sql(source: _Source, width: int) -> str:
    # Native sum() per bucket position is far faster than folding arrays row by row; positions beyond an
    # array's length are NULL and dropped when the result is trimmed to its bounds.
    sums = ", ".join(f"sum({source.count_at.format(i=i)})" for i in range(1, width + 1))
    return f"ARRAY[{sums}]::bigint[]"


# The columns of a `_part_rows` row, in SELECT order: bin start, group, bounds, counter total, gauge count, gauge
# sum, bucket sums, bucket width, newest sample (epoch), row count. Rows stay plain tuples: a per-label day has
# tens of thousands of them.
_WIDTH_COLUMN = 7


def _part_rows(
    cursor, kind: Kind, source: _Source, sql_parts: dict[str, str], args: list, width: int
) -> list[tuple]:
    # Only the aggregates the metric's kind needs: the per-row work is what a long window pays for.
    histogram = kind == Kind.HISTOGRAM
    counter_total = f"sum({source.total})" if kind == Kind.COUNTER else "NULL::float8"
    gauge = (
        f"sum({source.n}), sum({source.vsum})"
        if kind == Kind.GAUGE
        else "NULL::bigint, NULL::float8"
    )
    buckets = (
        f"{_bucket_sums_sql(source, width)}, max({source.width})"
        if histogram
        else "NULL::bigint[], NULL::int"
    )
    cursor.execute(
        f"""SELECT {sql_parts["bin"]} AS bin, {sql_parts["group"]} AS grp,
                   {source.bounds if histogram else "NULL::float8[]"} AS bounds,
                   {counter_total}, {gauge}, {buckets},
                   extract(epoch FROM max({source.newest}))::float8, {source.rows}
            FROM {source.table}
            WHERE metric_name = %s AND scope = %s {source.key_filter} AND {source.ts} >= {sql_parts["from"]}
                  AND {source.ts} < %s
                  {sql_parts["match"]}
            GROUP BY 1, 2, 3""",
        args,
    )
    return cursor.fetchall()


def aggregate(
    metric: str,
    start: datetime,
    end: datetime,
    *,
    group_label: str | tuple[str, ...] | None = None,
    step_seconds: int | None = None,
    match: Iterable[LabelMatch] = (),
    use_rollup: bool = True,
    using: str | None = None,
) -> dict[Key, Agg]:
    """Aggregates of `metric` over [start, end), keyed by (bin start or None, label value or None).

    Bin starts are Unix seconds (`bin_key(moment)`): tens of thousands of rows convert much faster.

    `step_seconds` bins by time (bins aligned to multiples of the step since 2000-01-01 UTC; with the
    rollup, steps must be whole hours); `group_label` groups by one label's value, or by several labels'
    values joined with GROUP_SEPARATOR.
    """
    using = using or read_alias()
    kind = CATALOGUE[metric].kind
    result: dict[Key, Agg] = {}
    match = list(match)
    match_sql, match_args = "", []
    for condition in match:
        sql, args = condition.sql()
        match_sql += " " + sql
        match_args += args
    group_labels = (group_label,) if isinstance(group_label, str) else tuple(group_label or ())
    minutes_plan = _minutes_plan(metric, group_labels, match)
    with connections[using].cursor() as cursor:
        for source, part_start, part_end in _sources(start, end, use_rollup, using, minutes_plan is not None):
            part_source = _SOURCES[source]
            ts_col = part_source.ts
            if source == "minutes":
                group_sql, group_args, part_match_sql, part_match_args = minutes_plan
            else:
                group_sql = (
                    f"concat_ws(%s, {', '.join(['labels ->> %s'] * len(group_labels))})"
                    if group_labels
                    else "NULL::text"
                )
                group_args = [GROUP_SEPARATOR, *group_labels] if group_labels else []
                part_match_sql, part_match_args = match_sql, match_args
            # A part of the rollup starting inside an hour (before the sample horizon) reads that hour whole and
            # counts it in the part's first bin; every other rollup part starts on a whole hour.
            bin_ts = f"greatest({ts_col}, %s::timestamptz)" if source == "rollup" else ts_col
            part_from = "date_trunc('hour', %s::timestamptz, 'UTC')" if source == "rollup" else "%s"
            sql_parts = {
                "from": part_from,
                "match": part_match_sql,
                "bin": (
                    f"extract(epoch FROM date_bin(make_interval(secs => %s::double precision), {bin_ts}, %s))"
                    "::bigint"
                    if step_seconds
                    else "NULL::bigint"
                ),
                "group": group_sql,
            }
            key_args = [metric, SCOPE_CLUSTER] * (2 if part_source.key_filter else 1)
            # The bin expression's arguments: the step, the part's start for a rollup part (see bin_ts), the origin.
            rollup_start = [part_start] if source == "rollup" else []
            bin_args = [step_seconds, *rollup_start, BIN_ORIGIN] if step_seconds else []
            args = [*bin_args, *group_args, *key_args, part_start, part_end, *part_match_args]
            rows = _part_rows(cursor, kind, part_source, sql_parts, args, BUCKET_WIDTH)
            widest = max((row[_WIDTH_COLUMN] or 0 for row in rows), default=0)
            if widest > BUCKET_WIDTH:
                rows = _part_rows(cursor, kind, part_source, sql_parts, args, widest)
            for bin_start, group, bounds, tot, count, gsum, sums, _width, last_epoch, row_count in rows:
                agg = result.get((bin_start, group))
                if agg is None:
                    agg = result[(bin_start, group)] = Agg()
                agg.total += float(tot or 0)
                agg.gauge_n += int(count or 0) if gsum is not None else 0
                agg.gauge_sum += float(gsum or 0)
                agg.rows += row_count
                if bounds and sums and sums[0] is not None:
                    agg.add_buckets(bounds, [int(c or 0) for c in sums[: len(bounds) + 1]])
                if last_epoch is not None and (agg.last_epoch is None or last_epoch > agg.last_epoch):
                    agg.last_epoch = last_epoch
    return result


def _minutes_plan(
    metric: str, group_labels: tuple[str, ...], match: list[LabelMatch]
) -> tuple[str, list, str, list] | None:
    """(group SQL, its args, match SQL, its args) on the minute table, or None when it cannot answer: a
    grouping or a match other than on the metric's split."""
    split = SPLITS.get(metric)
    if group_labels:
        if split is None or group_labels != (split.label,) or not split.serves_value():
            return None
        # concat_ws of one missing label is '' in the samples query; the split of such rows is '' too.
        group_sql, group_args = "split", []
    else:
        group_sql, group_args = "NULL::text", []
    match_sql, match_args = "", []
    for condition in match:
        translated = condition.split_sql(metric)
        if translated is None:
            return None
        match_sql += " " + translated[0]
        match_args += translated[1]
    return group_sql, group_args, match_sql, match_args


def total(
    metric: str, start: datetime, end: datetime, match: Iterable[LabelMatch] = (), using: str | None = None
) -> Agg:
    """Everything of `metric` in the window as one Agg (empty Agg without data)."""
    return aggregate(metric, start, end, match=match, using=using).get((None, None), Agg())


def by_label(
    metric: str,
    label: str,
    start: datetime,
    end: datetime,
    match: Iterable[LabelMatch] = (),
    using: str | None = None,
) -> dict[str, Agg]:
    """Aggregates per value of `label` (rows without the label are left out)."""
    grouped = aggregate(metric, start, end, group_label=label, match=match, using=using)
    return {group: agg for (_, group), agg in grouped.items() if group is not None}


def latest_gauge(metric: str, since: datetime, using: str | None = None) -> tuple[float, datetime] | None:
    """The newest minute value of a gauge (summed over label sets) if one is at least as new as `since`."""
    with connections[using or read_alias()].cursor() as cursor:
        cursor.execute(
            f"""SELECT ts, sum(value_sum) FROM {_SOURCES["minutes"].table}
               WHERE metric_name = %s AND scope = %s {_MINUTE_KEYS_SQL} AND ts >= %s AND value_sum IS NOT NULL
               GROUP BY ts ORDER BY ts DESC LIMIT 1""",
            [metric, SCOPE_CLUSTER, metric, SCOPE_CLUSTER, since],
        )
        row = cursor.fetchone()
    return (float(row[1]), row[0]) if row else None


def newest_sample_ts(metric: str, using: str | None = None) -> datetime | None:
    """When the newest sample of `metric` is from; None when there is none."""
    with connections[using or read_alias()].cursor() as cursor:
        # Per key, so each partition answers from the end of its (key_id, ts) index.
        cursor.execute(
            f"""SELECT max(newest) FROM {KEYS_TABLE} AS k
                CROSS JOIN LATERAL (SELECT max(ts) AS newest FROM {MINUTES_TABLE} WHERE key_id = k.id) AS m
                WHERE k.metric_name = %s""",
            [metric],
        )
        return cursor.fetchone()[0]


def known_label_values(metric: str, label: str, using: str | None = None) -> int:
    """How many values of `label` the label sets of `metric` seen in the retention window carry (the series
    ingestion records; 0 when none are recorded, e.g. for data written straight into the tables)."""
    with connections[using or read_alias()].cursor() as cursor:
        cursor.execute(
            f"SELECT count(DISTINCT labels ->> %s) FROM {Series._meta.db_table} WHERE metric_name = %s", [label, metric]
        )
        return cursor.fetchone()[0]


def any_sample_stored(using: str | None = None) -> bool:
    with connections[using or read_alias()].cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {MINUTES_TABLE})")
        return bool(cursor.fetchone()[0])


def newest_of(aggs: Iterable[Agg]) -> datetime | None:
    """The newest sample time among aggregates (None if none has one)."""
    newest = max((agg.last_epoch for agg in aggs if agg.last_epoch is not None), default=None)
    return datetime.fromtimestamp(newest, tz=UTC) if newest is not None else None


def bin_key(moment: datetime) -> int:
    """The key `aggregate` uses for the bin starting at `moment`."""
    return int(moment.timestamp())


def bins(start: datetime, end: datetime, step_seconds: int) -> list[datetime]:
    """Bin starts covering [start, end), aligned like the SQL date_bin above."""
    step = timedelta(seconds=step_seconds)
    first = start - (start - BIN_ORIGIN) % step
    result = []
    moment = first
    while moment < end:
        result.append(moment)
        moment += step
    return result


# Windows up to a day read the minute table only; longer ones read whole hours from the hourly rollup. Every
# reader of one figure over a window (a card, and the chart of the same window) must decide it the same way.
SAMPLES_MAX_WINDOW = timedelta(hours=24)


def reads_rollup(start: datetime, end: datetime) -> bool:
    """Whether a window is read with the hourly rollup (`aggregate(use_rollup=...)`), as the trend charts do."""
    return end - start > SAMPLES_MAX_WINDOW
