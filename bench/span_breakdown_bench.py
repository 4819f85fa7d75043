"""Span breakdowns: the span aggregates (telemetry.queries.span_breakdowns) against unpacking the spans.

Two questions an operator asks of spans, as issue 15 measured them against ClickHouse:
- error spans per route, last 24 h, top 10;
- p95 span duration per hour, last 7 days.
Each is answered twice, interleaved (old, new, old, new, ...): the old way groups the unpacked spans of the window
(`telemetry_trace_index_all` with the chunk conditions of telemetry.queries.stored, i.e. every chunk of the
window is unpacked), the new way reads the per-hour and per-minute aggregates. The error counts must be equal;
each hour's p95 from buckets must lie in the bucket of the exact one (the new answer is the bucket estimate).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/kaiku_h4_bench python manage.py migrate
    DATABASE_URL=... python -m bench.span_breakdown_bench --seed-days 30 --repeat 7

`--seed-days N` first fills the (span-less) database with N days of `heavy` spans (691,200 a day: 8 a second,
2,073,600 in 3 days as in the issue), through the index table so the aggregates count them as ingest would,
then packs every day as the packing job would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from telemetry import live_windows  # noqa: E402
from telemetry.packing import TRACE_CHUNKS, TRACE_TABLE, TRACE_VIEW, TRACES, pack_range  # noqa: E402
from telemetry.queries import span_breakdowns  # noqa: E402
from telemetry.queries.stored import window_sql  # noqa: E402
from telemetry.span_aggregates import BOUNDS_MS, HOURS_TABLE, MINUTES_TABLE  # noqa: E402
from telemetry.span_errors import SQL_FUNCTION  # noqa: E402

SPANS_PER_DAY = 691_200
ROUTES = 40


def seed(days: int) -> None:
    """`days` days of spans up to the start of the current hour, one statement per hour (as ingest would
    store them, many small batches make no difference to the counts), then packed a day at a time."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    per_hour = SPANS_PER_DAY // 24
    started = time.perf_counter()
    for hours_back in range(days * 24, 0, -1):
        hour = end - timedelta(hours=hours_back)
        with transaction.atomic(), connection.cursor() as cursor:
            # 40 routes, each served by one of 3 services in one of 3 domains; db spans (a quarter) without a
            # route; 3 % errors (5xx or failed), 12 % slow, the rest kept because their trace was sampled;
            # durations spread over every bucket.
            cursor.execute(
                f"""INSERT INTO {TRACE_TABLE}
                    (ts, id, trace_id, span_name, domain, route, status_code, duration_ms, service, kept_reason)
                SELECT %(hour)s::timestamptz + (i * 3600.0 / %(n)s) * interval '1 second', gen_random_uuid(),
                       md5(i::text || %(hour)s::text),
                       CASE WHEN db THEN 'SELECT t' || (i %% 12) ELSE 'GET /r' || r END,
                       CASE WHEN db THEN 'db' ELSE (ARRAY['chat','voice','auth'])[1 + r %% 3] END,
                       CASE WHEN db THEN NULL ELSE '/api/v1/r' || r || '/{{id}}' END,
                       CASE WHEN e THEN (ARRAY['500','503','ERROR'])[1 + i %% 3] ELSE '200' END,
                       CASE WHEN e THEN (20 + random() * 400)::int
                            WHEN s THEN (1000 + random() * random() * 12000)::int
                            ELSE (random() * random() * 900)::int END,
                       (ARRAY['vc-server','vc-voice','vc-gateway'])[1 + (CASE WHEN db THEN i ELSE r END) %% 3],
                       CASE WHEN e THEN 'e' WHEN s THEN 's' ELSE 'p' END::"char"
                FROM generate_series(0, %(n)s - 1) AS i,
                     LATERAL (SELECT i %% 4 = 0 AS db, (i * 7) %% {ROUTES} AS r) AS shape,
                     LATERAL (SELECT random() < 0.03 AS e) AS error,
                     LATERAL (SELECT NOT e AND random() < 0.12 AS s) AS slow""",
                {"hour": hour, "n": per_hour},
            )
        if hours_back % 24 == 1:
            day_start = hour - timedelta(hours=23)
            with transaction.atomic(), connection.cursor() as cursor:
                pack_range(cursor, TRACES, day_start, hour + timedelta(hours=1))
            print(f"seeded and packed {day_start:%Y-%m-%d %H:%M} + 24 h ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    with connection.cursor() as cursor:
        for table in (TRACE_TABLE, TRACE_CHUNKS, MINUTES_TABLE, HOURS_TABLE):
            cursor.execute(f"VACUUM ANALYZE {table}")


def old_errors_by_route(start: datetime, end: datetime, limit: int = 10) -> list[tuple[str, int]]:
    in_window, params = window_sql(start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT route, count(*) FROM {TRACE_VIEW}
                WHERE {in_window} AND {SQL_FUNCTION}(status_code, kept_reason) AND route IS NOT NULL
                GROUP BY route ORDER BY 2 DESC, 1 LIMIT %s""",
            [*params, limit],
        )
        return cursor.fetchall()


def new_errors_by_route(start: datetime, end: datetime, limit: int = 10) -> list[tuple[str, int]]:
    return [(row.route, row.errors) for row in span_breakdowns.errors_by_route(start, end, limit)]


def old_p95_by_hour(start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    in_window, params = window_sql(start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT date_trunc('hour', ts, 'UTC'), percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms)
                FROM {TRACE_VIEW} WHERE {in_window} GROUP BY 1 ORDER BY 1""",
            params,
        )
        return cursor.fetchall()


def new_p95_by_hour(start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    return [(row.hour, row.quantile_ms(0.95)) for row in span_breakdowns.durations_by_hour(start, end)]


def same_bucket(exact: float, estimate: float) -> bool:
    bucket = live_windows.bucket_index(exact)
    low = BOUNDS_MS[bucket - 1] if bucket else 0
    high = BOUNDS_MS[bucket] if bucket < len(BOUNDS_MS) else BOUNDS_MS[-1]
    return low <= estimate <= high


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    answer = function(*args)
    return (time.perf_counter() - started) * 1000, answer


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-days", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.seed_days:
        seed(args.seed_days)
    # Windows end on the minute (the API aligns to 10 s; the aggregates count whole minutes).
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cases = {
        "error spans per route, 24 h, top 10": (old_errors_by_route, new_errors_by_route, now - timedelta(days=1)),
        "p95 span duration per hour, 7 days": (old_p95_by_hour, new_p95_by_hour, now - timedelta(days=7)),
    }
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TRACE_TABLE}")
        hot = cursor.fetchone()[0]
        cursor.execute(f"SELECT coalesce(sum(row_count), 0) FROM {TRACE_CHUNKS}")
        packed = cursor.fetchone()[0]
        sizes = []
        for table in (MINUTES_TABLE, HOURS_TABLE):
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows = cursor.fetchone()[0]
            cursor.execute("SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
                           " WHERE inhparent = %s::regclass", [table])
            sizes.append(f"{table} {rows:,} rows, {cursor.fetchone()[0] / 2**20:.0f} MiB")
    print(f"spans: {hot:,} hot, {packed:,} packed; {'; '.join(sizes)}")
    print("| query | old (unpack spans) median / min | new (aggregates) median / min | ratio | answers |")
    print("|---|---:|---:|---:|---|")
    for label, (old, new, start) in cases.items():
        old_times, new_times = [], []
        for _ in range(args.repeat):
            elapsed, old_answer = timed(old, start, now)
            old_times.append(elapsed)
            elapsed, new_answer = timed(new, start, now)
            new_times.append(elapsed)
        if old is old_errors_by_route:
            verdict = "equal" if old_answer == new_answer else f"DIFFERENT: {old_answer} vs {new_answer}"
        else:
            hours_equal = [hour for hour, _ in old_answer] == [hour for hour, _ in new_answer]
            in_bucket = all(same_bucket(exact, estimate)
                            for (_, exact), (_, estimate) in zip(old_answer, new_answer, strict=False))
            verdict = (f"{len(new_answer)} hours, each p95 in the exact one's bucket" if hours_equal and in_bucket
                       else "DIFFERENT")
        old_median, new_median = statistics.median(old_times), statistics.median(new_times)
        print(f"| {label} | {old_median:,.1f} / {min(old_times):,.1f} ms | {new_median:,.1f} / {min(new_times):,.1f} ms"
              f" | {old_median / new_median:,.0f}x | {verdict} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
