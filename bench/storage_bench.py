"""Storage benchmark: fill N days at the contract's `heavy` profile, then measure what matters.

Fills the days as rows (as ingestion writes them), runs the packing job (telemetry.packing.pack_due: every
hour older than TELEMETRY_PACK_AFTER_MINUTES moves into compressed chunks), then reports the packed steady
state: table sizes per day (hot partitions and chunk tables) and per 30 days, bytes per packed record, the
packing job's time per day of data, the purge of one expired day (and of one hour, the hourly steady state),
the rollup refresh time and command-center queries through the `*_all` views.

Logs and spans come from the simulated platform through the receiver's own conversion and storage code
(`--data realistic`, the default: bench.realistic_data), or from the old synthetic SQL fill (`--data synthetic`:
8 message templates plus a counter, which compresses far better than real logs; kept for continuity). Metric
samples and voice rows are generated inside PostgreSQL (INSERT ... SELECT generate_series). Day by day, into a
throwaway database `<default database>_storage_bench` on the configured server (dropped at the
end unless --keep). Volumes per day at `heavy` (contract section 11) and the assumptions behind
them are in VOLUMES below and in docs/benchmarks.md.

    python -m bench.storage_bench            # 31 days (30 kept + 1 expired)
    python -m bench.storage_bench --days 3   # per-day figures and the tiers, in minutes
    python -m bench.storage_bench --quick    # 2 days at 2 % volume: a smoke run

Retention tiers (`--sample-days`, `--sampled-trace-days`, default: the settings): after the measurements at full
volume, the bench applies them as retention would once the oldest filled days are past them, reports the
size of a trace chunk day without its sampled-only spans and projects 30 days at `heavy` with those tiers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import override_settings  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from bench import realistic_data  # noqa: E402
from bench.bench_database import bench_database  # noqa: E402
from telemetry.contract import CATALOGUE, Kind, Label, Metric  # noqa: E402
from telemetry.packing import (  # noqa: E402
    CHUNK_SPAN,
    LOG_CHUNKS,
    LOG_TABLE,
    LOG_VIEW,
    LOGS,
    TRACE_CHUNKS,
    TRACE_TABLE,
    TRACE_VIEW,
    TRACES,
    pack_due,
    pack_range,
)
from telemetry.partitions import partitioned_tables  # noqa: E402
from telemetry.queries import stored  # noqa: E402
from telemetry.retention import enforce_retention  # noqa: E402
from telemetry.rollups import HOURLY_TABLE, refresh_rollups  # noqa: E402

ALIAS = "storage_bench"
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class Volumes:
    """Rows per day at `heavy`: 200 req/s, 40 routes, 2 WARN+ERROR logs/s, 300 voice sessions."""

    log_events: int = 2 * SECONDS_PER_DAY
    # Kept spans of 200 req/s: 1 % sampled traces (entry span + 2 db spans: 6/s), 0.5 % errors (1/s),
    # 0.5 % slow entry spans (1/s); slow db spans are mostly inside those: about 8 rows/s, of which
    # 6 are kept only because their trace was sampled (kept_reason 'p'), 1 error ('e') and 1 slow ('s').
    trace_rows: int = 8 * SECONDS_PER_DAY
    # 300 concurrent sessions of ~20 minutes.
    voice_sessions: int = 300 * 72
    # One quality row per session per minute (the platform's cadence is its own; see the docs).
    voice_metrics: int = 300 * 1440


VOLUMES = Volumes()
ROUTES = [f"/api/v1/{resource}/{{id}}" for resource in (
    "guilds", "channels", "messages", "users", "invites", "roles", "members", "voice", "files", "reactions",
)] + [f"/api/v1/guilds/{{guild_id}}/{resource}" for resource in (
    "channels", "members", "roles", "bans", "emojis", "invites", "audit", "settings", "webhooks", "threads",
)] + [f"/api/v1/channels/{{channel_id}}/{resource}" for resource in (
    "messages", "pins", "typing", "threads", "webhooks", "permissions", "invites", "search", "voice", "read",
)] + [f"/api/v1/{resource}" for resource in (
    "auth/login", "auth/refresh", "auth/logout", "users/me", "gateway", "health", "search", "notifications",
    "settings", "uploads",
)]
SECONDS_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
HISTOGRAM_BOUNDS = {
    Metric.VOICE_ROOM_PARTICIPANTS: [1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50],
    Metric.VOICE_SESSION_DURATION_SECONDS: [30, 60, 300, 600, 1800, 3600, 7200],
}
# Label value -> probability that the label set is active in a given minute.
STATUS_ODDS = {"200": 1.0, "404": 0.3, "500": 0.05}
ERROR_ODDS = {("404", "validation"): 0.3, ("500", "internal"): 0.05}
VALUES_BY_LABEL = {
    Label.DB_OPERATION: ["select", "insert", "update", "delete"],
    Label.WS_EVENT_TYPE: ["message.create", "message.update", "typing", "presence", "voice.state",
                          "channel.update", "member.update", "reaction.add"],
    Label.OTEL_SIGNAL: ["traces", "metrics", "logs"],
}


def label_sets() -> list[tuple[str, dict, float, list[float] | None]]:
    """(metric, labels, probability per minute, bucket bounds) for every active v1 label set."""
    sets = []
    for name, spec in CATALOGUE.items():
        if spec.flag is not None:
            continue
        bounds = HISTOGRAM_BOUNDS.get(name, SECONDS_BOUNDS) if spec.kind == Kind.HISTOGRAM else None
        labels = set(spec.labels)
        if Label.ERROR_TYPE in labels:
            combos = [({Label.HTTP_ROUTE: route, Label.HTTP_STATUS_CODE: status, Label.ERROR_TYPE: error}, odds)
                      for route in ROUTES for (status, error), odds in ERROR_ODDS.items()]
        elif Label.HTTP_ROUTE in labels:
            combos = [({Label.HTTP_ROUTE: route, Label.HTTP_METHOD: "POST" if index % 5 == 0 else "GET",
                        Label.HTTP_STATUS_CODE: status}, odds)
                      for index, route in enumerate(ROUTES) for status, odds in STATUS_ODDS.items()]
        elif Label.OUTCOME in labels:
            combos = [({Label.OUTCOME: outcome}, 1.0 if index == 0 else 0.3)
                      for index, outcome in enumerate(spec.outcomes)]
        elif labels:
            (label,) = labels
            failure = spec.kind == Kind.COUNTER and spec.signal == "errors"
            combos = [({label: value}, 0.05 if failure else 1.0) for value in VALUES_BY_LABEL[label]]
        else:
            combos = [({}, 1.0)]
        sets += [(str(name), {str(k): v for k, v in labels_.items()}, odds, bounds) for labels_, odds in combos]
    return sets


def fill_day(cursor, day: datetime, scale: float, data: str = "realistic", using: str = ALIAS) -> None:
    """One day of every table: metric samples and voice rows with SQL, logs and spans as `data` says."""
    if data == "realistic":
        realistic_data.fill(day, day + timedelta(days=1), "heavy", scale, using=using)
    else:
        fill_synthetic_logs_and_spans(cursor, day, scale)
    end = day + timedelta(days=1)
    cursor.execute(
        """INSERT INTO telemetry_metric_samples (ts, metric_name, scope, labels, value_count, value_sum,
                   value_p50, value_p95, value_p99, bucket_bounds, bucket_counts)
           SELECT m.ts, s.metric_name, 'cluster', s.labels, (1 + random() * 400)::bigint, random() * 1000,
                  CASE WHEN s.bounds IS NOT NULL THEN random() * 0.05 END,
                  CASE WHEN s.bounds IS NOT NULL THEN 0.05 + random() * 0.3 END,
                  CASE WHEN s.bounds IS NOT NULL THEN 0.3 + random() END,
                  s.bounds,
                  CASE WHEN s.bounds IS NOT NULL THEN
                       ARRAY(SELECT (random() * 60)::bigint FROM generate_series(0, cardinality(s.bounds))) END
           FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 minute', interval '1 minute') m(ts)
           JOIN bench_label_sets s ON random() < s.odds * %s""",
        [day, end, scale],
    )
    sessions = int(VOLUMES.voice_sessions * scale)
    cursor.execute(
        """INSERT INTO connection_sessions (started_at, ended_at, id, outcome)
           SELECT %s::timestamptz + i * (86400.0 / %s) * interval '1 second',
                  %s::timestamptz + i * (86400.0 / %s) * interval '1 second' + interval '20 minutes',
                  gen_random_uuid(), CASE WHEN i %% 50 = 0 THEN 'crash' ELSE 'normal' END
           FROM generate_series(0, %s - 1) i""",
        [day, sessions, day, sessions, sessions],
    )
    metrics = int(VOLUMES.voice_metrics * scale)
    cursor.execute(
        """INSERT INTO connection_metrics (ts, packet_loss, session_id, latency_ms, jitter_ms, quality)
           SELECT %s::timestamptz + (i / 300) * interval '1 minute' + (i %% 300) * interval '1 millisecond',
                  random() * 4, md5((i %% 300)::text || (i / 6000))::uuid,
                  20 + (random() * 150)::int, (random() * 60)::int, (random() * 3)::int
           FROM generate_series(0, %s - 1) i""",
        [day, metrics],
    )


def fill_synthetic_logs_and_spans(cursor, day: datetime, scale: float) -> None:
    """The old synthetic fill (8 message templates plus a counter; spans in threes), kept for continuity:
    it compresses far better than real telemetry does (bench.realistic_data)."""
    logs = int(VOLUMES.log_events * scale)
    cursor.execute(
        """INSERT INTO telemetry_log_events (ts, id, level, service, domain, event, message, trace_id, span_id,
                                             attrs)
           SELECT %s::timestamptz + i * (86400.0 / %s) * interval '1 second', gen_random_uuid(),
                  CASE WHEN i %% 3 = 0 THEN 'ERROR' ELSE 'WARN' END, 'vc-server',
                  (ARRAY['auth','chat','voice','ws','db','admin','crypto','telemetry'])[1 + (i * 7) %% 8],
                  (ARRAY['auth.login_failed','chat.send_slow','voice.join_failed','ws.dropped','db.slow_query',
                         'admin.denied','crypto.key_rotation','telemetry.export_failed'])[1 + (i * 13) %% 8],
                  (ARRAY['login rejected for [email]: invalid credentials after 3 attempts',
                         'message send took longer than the 500 ms budget (channel [uuid], 812 ms)',
                         'SFU rejected the join: room is full (capacity 25, participants 25)',
                         'websocket closed by peer with code 1006 after 42 s without heartbeat',
                         'query exceeded 100 ms: SELECT on messages by channel_id, 233 ms',
                         'permission denied for admin endpoint /api/v1/admin/users',
                         'key rotation postponed: previous rotation still in progress',
                         'OTLP export failed: collector answered 503, retrying in 5 s'])[1 + (i * 13) %% 8]
                    || ' #' || (i %% 9973),
                  CASE WHEN i %% 10 < 7 THEN md5(i::text || 't') END,
                  CASE WHEN i %% 10 < 7 THEN left(md5(i::text || 's'), 16) END,
                  CASE WHEN i %% 3 = 0 THEN jsonb_build_object('error.type', 'internal',
                       'exception.type', 'TimeoutError', 'code.function', 'handle_request')
                       ELSE '{}'::jsonb END
           FROM generate_series(0, %s - 1) i""",
        [day, logs, logs],
    )
    traces = int(VOLUMES.trace_rows * scale)
    cursor.execute(
        """INSERT INTO telemetry_trace_index (ts, id, duration_ms, trace_id, span_name, domain, route, status_code,
                                              service, kept_reason)
           SELECT %s::timestamptz + i * (86400.0 / %s) * interval '1 second', gen_random_uuid(),
                  CASE WHEN i %% 8 = 1 THEN 1000 + (random() * 4000)::int
                       WHEN i %% 3 = 0 THEN 5 + (random() * 90)::int ELSE 20 + (random() * 900)::int END,
                  md5((i / 3)::text || %s), CASE WHEN i %% 3 = 0 THEN 'db.query' ELSE 'http.server.request' END,
                  CASE WHEN i %% 3 = 0 THEN 'db' ELSE 'api' END,
                  (%s::text[])[1 + (i * 7) %% 40],
                  CASE WHEN i %% 8 = 0 AND i %% 3 = 0 THEN 'ERROR' WHEN i %% 8 = 0 THEN '500'
                       WHEN i %% 3 = 0 THEN 'OK' ELSE '200' END, 'vc-server',
                  CASE i %% 8 WHEN 0 THEN 'e' WHEN 1 THEN 's' ELSE 'p' END
           FROM generate_series(0, %s - 1) i""",
        [day, traces, day.isoformat(), ROUTES, traces],
    )


def table_sizes(cursor, tables) -> dict[str, int]:
    sizes = {}
    for table in tables:
        cursor.execute("SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s)",
                       [table])
        sizes[table] = int(cursor.fetchone()[0])
    return sizes


def day_sizes(cursor, day: datetime) -> dict[str, int]:
    return {table: _size(cursor, f"{table}_p{day:%Y%m%d}") for table in partitioned_tables()}


def _size(cursor, relation: str) -> int:
    cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [relation])
    return int(cursor.fetchone()[0])


def relation_sizes(cursor, relation: str) -> dict[str, int]:
    """Heap (with TOAST) and each index of one table, in bytes."""
    cursor.execute(
        """SELECT 'heap', pg_table_size(%s::regclass)
           UNION ALL
           SELECT regexp_replace(indexrelid::regclass::text, '^.*_p[0-9]{8}_?', ''), pg_relation_size(indexrelid)
           FROM pg_index WHERE indrelid = %s::regclass""",
        [relation, relation],
    )
    return {name: int(size) for name, size in cursor.fetchall()}


def _per_row(sizes: dict[str, int], rows: int) -> str:
    return ", ".join(f"{name} {size / max(rows, 1):.1f}" for name, size in sizes.items())


def timed_query(cursor, sql: str, params: list, repeat: int = 5) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _durations(durations: dict[str, int]) -> str:
    return ", ".join(f"{view} {ms:,} ms" for view, ms in durations.items())


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 days at 2 %% of the heavy volume")
    parser.add_argument("--days", type=int, default=31, help="days to fill, ending yesterday (default 31)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the heavy volume (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--data", choices=("realistic", "synthetic"), default="realistic",
                        help="logs and spans from the simulator through the receiver's code (default), or the old "
                             "synthetic SQL fill")
    parser.add_argument("--sample-days", type=int, default=settings.TELEMETRY_SAMPLE_RETENTION_DAYS,
                        help="minute samples tier to apply and project, days (default: the setting; 30 = no tier)")
    parser.add_argument("--sampled-trace-days", type=int, default=settings.TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS,
                        help="sampled-only spans tier to apply and project, days (default: the setting; 30 = no tier)")
    args = parser.parse_args(argv)
    days, scale = (2, 0.02) if args.quick else (args.days, args.scale)
    args.days_filled = days
    if not 1 <= days <= 31 or not 0 < scale <= 1:
        parser.error("--days must be 1-31 and --scale in (0, 1]")

    with bench_database("storage_bench", ALIAS, keep=args.keep):
        return run(days, scale, args)


def window(start: datetime, end: datetime) -> str:
    """The predicates that let a view query skip the chunks outside [start, end) before unnesting them."""
    hour = int(CHUNK_SPAN.total_seconds())
    return (f"ts >= '{start.isoformat()}' AND ts < '{end.isoformat()}'"
            f" AND chunk_first_ts >= '{(start - timedelta(seconds=hour)).isoformat()}'"
            f" AND chunk_first_ts < '{end.isoformat()}' AND chunk_last_ts >= '{start.isoformat()}'")


def packed_records(cursor, chunk_table: str, day: datetime) -> tuple[int, int]:
    """(records, chunks) in one day partition of a chunk table."""
    cursor.execute(f"SELECT coalesce(sum(row_count), 0), count(*) FROM {chunk_table}_p{day:%Y%m%d}")
    records, chunks = cursor.fetchone()
    return int(records), int(chunks)


def run(days: int, scale: float, args) -> int:
    connection = connections[ALIAS]
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    fill_days = [today - timedelta(days=offset) for offset in range(days, 0, -1)]
    print(f"storage bench: {days} days at {scale:g} x heavy, {args.data} logs and spans, "
          f"database {connection.settings_dict['NAME']}")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_label_sets (metric_name text, labels jsonb, odds float8, bounds float8[])")
        sets = label_sets()
        cursor.executemany("INSERT INTO bench_label_sets VALUES (%s, %s, %s, %s)",
                           [(metric, Jsonb(labels), odds, bounds) for metric, labels, odds, bounds in sets])
        print(f"  {len(sets)} label sets, {sum(odds for _, _, odds, _ in sets):.0f} active per minute on average")
        fill_started = time.perf_counter()
        for day in fill_days:
            started = time.perf_counter()
            fill_day(cursor, day, scale, args.data)
            print(f"  filled {day:%Y-%m-%d} in {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("DROP TABLE bench_label_sets")
        cursor.execute("VACUUM ANALYZE")
        print(f"  fill: {time.perf_counter() - fill_started:.0f} s")

        counts = {}
        for table in partitioned_tables():
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        full_day = fill_days[len(fill_days) // 2]
        unpacked = {table: _size(cursor, f"{table}_p{full_day:%Y%m%d}") for table in (LOG_TABLE, TRACE_TABLE)}
        print(f"  one day as rows, before packing: {LOG_TABLE} {mib(unpacked[LOG_TABLE])}, "
              f"{TRACE_TABLE} {mib(unpacked[TRACE_TABLE])}")

    # The packing job as beat runs it: every hour older than the setting, both tables, hour by hour.
    report = pack_due(now=now, using=ALIAS)
    print(f"  packing job: {report.rows_packed[LOG_TABLE]:,} log records and {report.rows_packed[TRACE_TABLE]:,} "
          f"spans of {report.hours_packed[LOG_TABLE]} + {report.hours_packed[TRACE_TABLE]} hours in "
          f"{report.duration_ms / 1000:.1f} s = {report.duration_ms / 1000 / days:.2f} s per day of data; "
          f"{len(report.partitions_truncated)} emptied hot partitions truncated")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        per_day = day_sizes(cursor, full_day)
        log_records, log_chunks = packed_records(cursor, LOG_CHUNKS, full_day)
        span_records, span_chunks = packed_records(cursor, TRACE_CHUNKS, full_day)
        totals = table_sizes(cursor, partitioned_tables())
        print(f"\n  packed steady state, one full day ({full_day:%Y-%m-%d}):")
        print(f"  {'table':28} {'rows/day':>12} {'size/day':>12} {'x30 days':>12}")
        for table in partitioned_tables():
            rows = {LOG_CHUNKS: log_chunks, TRACE_CHUNKS: span_chunks}.get(table, counts[table] / days)
            print(f"  {table:28} {rows:12,.0f} {mib(per_day[table]):>12} {mib(per_day[table] * 30):>12}")
        print(f"  bytes per packed record (whole day partition incl. TOAST and index): "
              f"log {per_day[LOG_CHUNKS] / max(log_records, 1):.1f} ({log_records:,} records in {log_chunks} chunks), "
              f"span {per_day[TRACE_CHUNKS] / max(span_records, 1):.1f} "
              f"({span_records:,} spans in {span_chunks} chunks)")
        for chunk_table, records in ((LOG_CHUNKS, log_records), (TRACE_CHUNKS, span_records)):
            parts = relation_sizes(cursor, f"{chunk_table}_p{full_day:%Y%m%d}")
            print(f"    {chunk_table} bytes/record: {_per_row(parts, records)}")
        native = [table for table in partitioned_tables() if not table.startswith("connection_")]
        print(f"  native telemetry tables (hot + chunks, no tiers): {mib(sum(per_day[t] for t in native))}/day, "
              f"{mib(30 * sum(per_day[t] for t in native))}/30 days "
              f"(with voice copies: {mib(30 * sum(per_day.values()))}); all {days} days stored: "
              f"{mib(sum(totals.values()))}")
        args.unpacked = unpacked

        day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
        recent_trace = a_trace(cursor, fill_days[-1] + timedelta(hours=23))
        week_trace = a_trace(cursor, fill_days[max(len(fill_days) - 5, 0)])
        # A trace look-up as the API runs it (queries.stored.spans_of_trace), after its hour-filter query (not timed).
        def one_trace(trace_id: str, start: datetime) -> tuple[str, list]:
            found = stored.spans_of_trace(trace_id, start, now, using=ALIAS).filter(ts__gte=start, ts__lt=now)
            sql, params = found.query.sql_with_params()
            return sql, list(params)

        queries = {
            "latest 100 ERROR logs, 24 h": (
                f"SELECT * FROM {LOG_VIEW} WHERE level = 'ERROR' AND {window(day_ago, now)}"
                " ORDER BY ts DESC, id DESC LIMIT 100", []),
            # The API reads a 7 d list in slices, newest hour first (command_center/selectors/pagination.py);
            # the filled days end at midnight, so that is where the newest packed hour is.
            "latest 100 ERROR logs, 7 d (its first slice: 1 h)": (
                f"SELECT * FROM {LOG_VIEW} WHERE level = 'ERROR' AND {window(today - timedelta(hours=1), today)}"
                " ORDER BY ts DESC, id DESC LIMIT 100", []),
            "latest 100 voice logs, 24 h": (
                f"SELECT * FROM {LOG_VIEW} WHERE domain = 'voice' AND {window(day_ago, now)}"
                " ORDER BY ts DESC, id DESC LIMIT 100", []),
            "spans of one trace, 24 h window": one_trace(recent_trace, day_ago),
            "spans of one trace, 7 d window": one_trace(week_trace, week_ago),
            "slow queries (db spans by name, p95), 24 h": (
                "SELECT span_name, count(*), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)"
                f" FROM {TRACE_VIEW} WHERE domain = 'db' AND {window(day_ago, now)}"
                " GROUP BY span_name ORDER BY 3 DESC LIMIT 10", []),
            "requests per minute, 24 h": (
                "SELECT ts, sum(value_count) FROM telemetry_metric_samples WHERE metric_name = %s AND ts >= %s"
                " GROUP BY ts ORDER BY ts", [str(Metric.HTTP_REQUESTS_TOTAL), day_ago]),
            "latency buckets per hour, 7 d (hourly rollup)": (
                "SELECT hour, bucket_counts FROM telemetry_trend_rollups_hourly WHERE metric_name = %s"
                " AND hour >= %s", [str(Metric.HTTP_REQUEST_DURATION_SECONDS), today - timedelta(days=7)]),
            "requests per day, 30 d (hourly rollup)": (
                "SELECT date_trunc('day', hour, 'UTC') AS day, sum(total_count) FROM telemetry_trend_rollups_hourly"
                " WHERE metric_name = %s"
                " GROUP BY day ORDER BY day", [str(Metric.HTTP_REQUESTS_TOTAL)]),
        }
        durations = refresh_rollups(using=ALIAS)
        print("  first rollup refresh (every hour changed): " + _durations(durations))
        cursor.execute("ANALYZE telemetry_trend_rollups_hourly")
        cursor.execute("SELECT sum(pg_total_relation_size(relname::regclass)) FROM unnest(%s::text[]) relname",
                       [[HOURLY_TABLE]])
        args.rollup_bytes = int(cursor.fetchone()[0])
        print(f"  rollups (hourly table): {mib(args.rollup_bytes)}")
        print("\n  command-center queries (median of 5):")
        for label, (sql, params) in queries.items():
            cursor.execute(sql, params)
            found = len(cursor.fetchall())
            print(f"    {label:48} {timed_query(cursor, sql, params):8.1f} ms  ({found} rows)")

    with connection.cursor() as cursor:
        args.hot_end_of_day = hot_partitions_at_end_of_day(cursor, full_day, today)
    print(f"  today's hot partitions at the end of a day packed hourly (VACUUM after each pack, as autovacuum): "
          f"{LOG_TABLE} {mib(args.hot_end_of_day[LOG_TABLE])}, {TRACE_TABLE} {mib(args.hot_end_of_day[TRACE_TABLE])}"
          f" (a whole day as rows: {mib(unpacked[LOG_TABLE])}, {mib(unpacked[TRACE_TABLE])})")

    print("\n  maintenance:")
    durations = refresh_rollups(using=ALIAS, full=True)
    print("    rollup full rebuild (after a backfill): " + _durations(durations))
    with connections[ALIAS].cursor() as cursor:
        # The steady state: the samples of the last hour changed since the previous refresh.
        last_hour = today - timedelta(hours=1)
        cursor.execute("UPDATE telemetry_metric_samples SET value_count = value_count WHERE ts >= %s AND ts < %s",
                       [last_hour, today])
    durations = refresh_rollups(using=ALIAS)
    print("    hourly rollup refresh (one hour changed): " + _durations(durations))
    started = time.perf_counter()
    idle = pack_due(now=now, using=ALIAS)
    print(f"    packing job with nothing due: {(time.perf_counter() - started) * 1000:.0f} ms "
          f"({idle.total_rows} rows)")
    # The cap alone first (the tiers' work is measured on its own below).
    no_tiers = override_settings(TELEMETRY_SAMPLE_RETENTION_DAYS=30, TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS=30)
    if days == 31:
        with no_tiers:
            report = enforce_retention(now=today, using=ALIAS)
        purge_ms = sum(t.duration_ms for t in report.tables)
        print(f"    purge of one expired day: {report.partitions_dropped} partitions, {report.rows_deleted:,} rows "
              f"in {purge_ms} ms (+ rollup refresh; whole run {report.duration_ms} ms)")
        print("      " + ", ".join(f"{t.table} {t.duration_ms} ms" for t in report.tables))
        with no_tiers:
            report = enforce_retention(now=today + timedelta(hours=1), using=ALIAS)
        purge_ms = sum(t.duration_ms for t in report.tables)
        print(f"    hourly purge inside the boundary day: {report.rows_deleted:,} rows in {purge_ms} ms "
              f"(+ rollup refresh; whole run {report.duration_ms} ms)")
        measure_tiers(today + timedelta(hours=1), full_day, per_day, args)
    else:
        # The oldest filled day just past the trace tier, so that its trace chunks get rewritten.
        measure_tiers(fill_days[0] + timedelta(days=1 + args.sampled_trace_days), fill_days[0], per_day, args)
        with no_tiers:
            report = enforce_retention(now=fill_days[0] + timedelta(days=31), using=ALIAS)
        purge_ms = sum(t.duration_ms for t in report.tables)
        print(f"    purge of the oldest filled day: {report.partitions_dropped} partitions, {report.rows_deleted:,} "
              f"rows in {purge_ms} ms (whole run with rollup refresh {report.duration_ms} ms)")
        print("      " + ", ".join(f"{t.table} {t.duration_ms} ms" for t in report.tables))
    return 0


def hot_partitions_at_end_of_day(cursor, source_day: datetime, today: datetime) -> dict[str, int]:
    """Replay `source_day`'s log records and spans into today hour by hour, packing each hour once the next
    one has begun and vacuuming the hot partitions after each pack; returns their sizes after the 24th hour
    (today's partitions are truncated only once the day is over, so this is their largest)."""
    shift = today - source_day
    copies = {
        LOG_TABLE: (LOG_VIEW, "ts, id, level, service, domain, event, message, trace_id, span_id, attrs",
                    "ts + %s, gen_random_uuid(), level, service, domain, event, message, trace_id, span_id, attrs"),
        TRACE_TABLE: (TRACE_VIEW, "ts, id, duration_ms, trace_id, span_name, domain, route, status_code, service,"
                      " kept_reason", "ts + %s, gen_random_uuid(), duration_ms, trace_id, span_name, domain, route,"
                      " status_code, service, kept_reason"),
    }
    partitions = {table: f"{table}_p{today:%Y%m%d}" for table in copies}
    for hour in range(24):
        start = source_day + timedelta(hours=hour)
        for table, (view, columns, values) in copies.items():
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {values} FROM {view}"
                           f" WHERE {window(start, start + timedelta(hours=1))}", [shift])
        if hour:
            packed_hour = today + timedelta(hours=hour - 1)
            for shape in (LOGS, TRACES):
                pack_range(cursor, shape, packed_hour, packed_hour + timedelta(hours=1))
            for partition in partitions.values():
                cursor.execute(f"VACUUM {partition}")
    return {table: _size(cursor, partition) for table, partition in partitions.items()}


def a_trace(cursor, hour: datetime) -> str | None:
    """The trace id of a span stored in the hour from `hour` (whatever the fill)."""
    cursor.execute(f"SELECT trace_id FROM {TRACE_VIEW} WHERE {window(hour, hour + CHUNK_SPAN)} LIMIT 1")
    row = cursor.fetchone()
    return row[0] if row else None


def measure_tiers(now: datetime, tiered_day: datetime, per_day: dict[str, int], args) -> None:
    """Apply the retention tiers as the hourly job would at `now`; print what they removed, the size of a
    trace chunk day past the tier (`tiered_day`) and the 30-day projection at this volume."""
    tiers = {"TELEMETRY_SAMPLE_RETENTION_DAYS": args.sample_days,
             "TELEMETRY_SAMPLED_TRACE_RETENTION_DAYS": args.sampled_trace_days}
    with override_settings(**tiers):
        # The empty days before the filled ones first, so that the run measured works on filled days only.
        enforce_retention(now=now - timedelta(days=1), using=ALIAS)
        report = enforce_retention(now=now, using=ALIAS)
    print(f"\n  retention tiers (samples {args.sample_days} d, sampled-only spans {args.sampled_trace_days} d), "
          f"as at {now:%Y-%m-%d %H:%M}:")
    for tier in report.tiers:
        print(f"    {tier.table}, {tier.tier}: {tier.rows_deleted:,} rows ({tier.packed_rows_deleted:,} packed), "
              f"{len(tier.partitions_dropped)} partitions dropped in {tier.duration_ms:,} ms")
    with override_settings(**tiers):  # the next hourly run, with no new day past the tiers
        again = enforce_retention(now=now + timedelta(minutes=30), using=ALIAS)
    print("    next hourly run, nothing new past the tiers: "
          + ", ".join(f"{tier.tier} {tier.duration_ms:,} ms ({tier.rows_deleted:,} rows)" for tier in again.tiers))
    chunk_day = f"{TRACE_CHUNKS}_p{tiered_day:%Y%m%d}"
    with connections[ALIAS].cursor() as cursor:
        tiered_size = _size(cursor, chunk_day)
        records, chunks = packed_records(cursor, TRACE_CHUNKS, tiered_day)
        print(f"    trace chunk day past the tier ({tiered_day:%Y-%m-%d}): {records:,} spans in {chunks} chunks, "
              f"{mib(tiered_size)} (full day {mib(per_day[TRACE_CHUNKS])}); "
              f"{tiered_size / max(records, 1):.1f} bytes/span")
    rollups = args.rollup_bytes * 30 / args.days_filled  # as first refreshed; hourly rows grow with days
    sample_days = min(args.sample_days, 30)
    trace_days = min(args.sampled_trace_days, 30)
    projected = {
        TRACE_CHUNKS: trace_days * per_day[TRACE_CHUNKS] + (30 - trace_days) * tiered_size,
        "telemetry_metric_samples": sample_days * per_day["telemetry_metric_samples"],
        "rollups (hourly table)": rollups,
        # Today's rows are packed hour by hour and autovacuum lets the partition reuse their space; it is
        # emptied (truncated) once the day is over. Its size at the end of a replayed day:
        f"{LOG_TABLE} (today, hot)": args.hot_end_of_day[LOG_TABLE],
        f"{TRACE_TABLE} (today, hot)": args.hot_end_of_day[TRACE_TABLE],
    }
    projected.update({table: 30 * size for table, size in per_day.items()
                      if table not in projected and not table.startswith("connection_")})
    print("    projected 30 days at this volume with these tiers (packed steady state):")
    for table, size in projected.items():
        print(f"      {table:38} {mib(int(size)):>12}")
    print(f"      {'native telemetry together':38} {mib(int(sum(projected.values()))):>12}")
    native = [table for table in partitioned_tables() if not table.startswith("connection_")]
    with connections[ALIAS].cursor() as cursor:
        stored = sum(table_sizes(cursor, native).values()) + args.rollup_bytes
    print(f"    stored now, native tables and rollups (all days filled, after the tiers): {mib(stored)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
